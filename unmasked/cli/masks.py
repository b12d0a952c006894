"""``unmasked masks``: hole masks (generated) and synthetic worn face masks (MaskTheFace method)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from unmasked.cli.common import USER_ERRORS, fail, message, run
from unmasked.data.datasets import list_images
from unmasked.data.face_masks import mask_folder
from unmasked.masks import generate_masks
from unmasked.masks.templates import TemplateSet


@click.group("masks")
def masks_group() -> None:
    """Generate hole masks (free-form strokes, irregular, boxes, bucketed by hole ratio; worn face masks)."""


@masks_group.command("generate")
@click.option("--kind", required=True, type=click.Choice(["free_form", "free_form_box", "irregular", "box", "centre_box", "object", "bucketed"]),
              help="free_form: DeepFill v2 strokes; irregular: PConv-style; bucketed: hole ratio in a PConv bucket.")
@click.option("--count", default=100, show_default=True, help="Number of masks (for bucketed without --bucket: per each of the 12 cells).")
@click.option("--size", default=256, show_default=True, help="Mask side in pixels.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder (PNG masks + masks.csv).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same masks.")
@click.option("--bucket", type=click.IntRange(0, 5), help="Bucketed only: hole-ratio bucket 0..5 = (0.01,0.1] .. (0.5,0.6].")
@click.option("--border/--no-border", default=None, help="Bucketed only (with --bucket): holes touch the border or not.")
def masks_generate_cmd(kind, count, size, out_dir, seed, bucket, border) -> None:
    """Write COUNT masks of KIND as white-on-black PNGs and a masks.csv of their statistics."""
    kwargs = {}
    if bucket is not None or border is not None:
        if kind != "bucketed":
            fail("--bucket and --border/--no-border apply to --kind bucketed only")
        if bucket is None or border is None:
            fail("give both --bucket and --border/--no-border (or neither, for all 12 cells)")
        kwargs = {"bucket": bucket, "touches_border": border}
    paths = run(generate_masks, kind, count, size, out_dir, seed=seed, **kwargs)
    click.echo(f"wrote {len(paths)} masks to {out_dir}")


@masks_group.command("face")
@click.option("--input-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of photos (recursive).")
@click.option("--output-dir", required=True, type=click.Path(path_type=Path),
              help="Masked photos (NAME.png) and their masks (NAME_mask.png, white = hole), mirroring the input tree.")
@click.option("--type", "kind", default="random", show_default=True,
              help="Mask type: surgical, n95, kn95, cloth or random; with --templates, any template name in it.")
@click.option("--templates", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A MaskTheFace template folder (masks.cfg + templates/*.png) instead of the built-in drawings.")
@click.option("--detector", default="blazeface", show_default=True,
              type=click.Choice(["blazeface", "auto", "all", "hog", "cnn"]),
              help="blazeface: MediaPipe's BlazeFace + FaceMesh (milliseconds); dlib's auto: HOG, then HOG upsampled "
                   "once more, then the slower CNN; all: every face any of them finds.")
@click.option("--colour", "--color", "colour", default=None,
              help="Recolour the masks: a name (black, charcoal, dimgray, grey, navy, cyan_blue, pink, olive, white, "
                   "beige) or #rrggbb.")
@click.option("--texture", default=None,
              help="Pattern the masks with a picture (a path), or 'random' for one of the --templates folder's textures.")
@click.option("--weight", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="How strongly --colour/--texture replace the mask's own colour (MaskTheFace uses 0.5).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same masks.")
def masks_face_cmd(input_dir, output_dir, kind, templates, detector, colour, texture, weight, seed) -> None:
    """Put synthetic worn face masks (MaskTheFace method) on every face found in --input-dir.

    \b
    Example:
      unmasked masks face --input-dir photos/ --output-dir masked/ --type surgical --seed 1
      unmasked masks face --input-dir photos/ --output-dir masked/ --type cloth --colour black
    """
    template_set = run(TemplateSet.from_folder, templates) if templates is not None else None
    total = len(run(list_images, input_dir))
    counts = {"masked": 0, "no_face": 0, "error": 0}
    faces = 0
    items = mask_folder(input_dir, output_dir, kind=kind, templates=template_set, seed=seed, detector=detector,
                        colour=colour, texture=texture, weight=weight)
    try:
        for item in tqdm(items, total=total, unit="img", file=sys.stderr):
            counts[item.status] += 1
            faces += item.faces
            if item.status == "error":
                tqdm.write(f"error: {item.source}: {item.message}", file=sys.stderr)
    except USER_ERRORS as e:
        fail(message(e))
    click.echo(f"masked {faces} faces in {counts['masked']} images; {counts['no_face']} images without a face; "
               f"{counts['error']} unreadable -> {output_dir}")
