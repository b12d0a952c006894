"""``unmasked fill``: one image, or a folder of images, through :func:`unmasked.pipelines.inpaint.inpaint`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from unmasked.api import Inpainter
from unmasked.cli.common import MAX_PIXELS_HELP, fail, parse_box, run
from unmasked.conventions import DEFAULT_MAX_PIXELS, save_image
from unmasked.hub import DEFAULT_FACE_PRESET, DEFAULT_REFERENCE_MODEL, DEFAULT_SCENE_MODEL, DEFAULT_SKETCH_MODEL
from unmasked.pipelines.batch import fill_folder, plan_folder


@click.command("fill")
@click.argument("image", required=False, type=click.Path(path_type=Path))
@click.option("--mask", "-m", "mask", type=click.Path(path_type=Path), help="Mask image (white = hole), same size as IMAGE.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Where to write the result (format from suffix).")
@click.option("--model", default=None,
              help="Model name (see `unmasked models`) or a .safetensors checkpoint.  "
                   f"[default: auto ({DEFAULT_FACE_PRESET} on faces, {DEFAULT_SCENE_MODEL} elsewhere); "
                   f"{DEFAULT_REFERENCE_MODEL} with --reference/--gallery]")
@click.option("--input-dir", type=click.Path(path_type=Path), help="Fill every image below this folder instead of IMAGE.")
@click.option("--mask-dir", type=click.Path(path_type=Path), help="Masks for --input-dir: same relative name (or NAME_mask.*).")
@click.option("--output-dir", type=click.Path(path_type=Path), help="Results for --input-dir, mirroring its tree.")
@click.option("--max-pixels", default=None, type=click.IntRange(min=1), help=MAX_PIXELS_HELP + "  [default: 40,000,000]")
@click.option("--reference", type=click.Path(path_type=Path),
              help="A photo of the same person (reference-guided models such as two_face).")
@click.option("--gallery", type=click.Path(path_type=Path),
              help="A folder of photos (flat, or one sub-folder per person): the closest person's best photo "
                   "becomes the reference (index cached in the folder); none below the similarity threshold.")
@click.option("--sketch", type=click.Path(path_type=Path),
              help="Lines for the fill to follow (white = line, same size as IMAGE; only inside the hole counts): "
                   f"DeepFill v2's user-guided mode. [default model with it: {DEFAULT_SKETCH_MODEL}]")
@click.option("--box", metavar="X,Y,W,H",
              help="The face square, for a face the detector misses: the hole inside it is filled as a face, "
                   "aligned in that square (as the web page's face square).")
@click.option("--reference-box", metavar="X,Y,W,H",
              help="The face square on the --reference photo (a group photo, or a face the detector misses); "
                   "without it the reference's largest face is used.")
def fill_cmd(image, mask, output, model, input_dir, mask_dir, output_dir, max_pixels, reference, gallery,
             sketch, box, reference_box) -> None:
    """Fill the hole of IMAGE given by --mask and write --output.

    Any size and mode in, same size and mode out; pixels outside the hole are copied
    byte for byte. Large images are filled crop by crop around each hole at the model's
    working size. An empty mask copies the image through with a note.

    \b
    Examples:
      unmasked fill photo.jpg --mask mask.png -o filled.png --model patchmatch
      unmasked fill --input-dir photos/ --mask-dir masks/ --output-dir filled/
      unmasked fill face.jpg --mask m.png -o out.png --reference other.jpg
      unmasked fill face.jpg --mask m.png -o out.png --reference group.jpg --reference-box 300,40,120,120
      unmasked fill face.jpg --mask m.png -o out.png --sketch lines.png
      unmasked fill group.jpg --mask m.png -o out.png --box 120,80,160,160
    """
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    folder_mode = any(x is not None for x in (input_dir, mask_dir, output_dir))
    if folder_mode:
        if image is not None or mask is not None or output is not None:
            fail("use either IMAGE --mask --output, or --input-dir --mask-dir --output-dir, not both")
        if None in (input_dir, mask_dir, output_dir):
            fail("folder mode needs all of --input-dir, --mask-dir and --output-dir")
    elif image is None or mask is None or output is None:
        fail("give IMAGE, --mask and --output (or the --input-dir/--mask-dir/--output-dir trio); see --help")

    if reference is not None and gallery is not None:
        fail("give --reference or --gallery, not both")
    if reference_box is not None and reference is None:
        fail("--reference-box needs --reference (the photo the square is on)")
    if folder_mode and (reference is not None or gallery is not None):
        fail("--reference/--gallery work on one IMAGE, not with --input-dir")
    if folder_mode and sketch is not None:
        fail("--sketch works on one IMAGE, not with --input-dir")
    if folder_mode and box is not None:
        fail("--box works on one IMAGE, not with --input-dir")
    if sketch is not None and (reference is not None or gallery is not None):
        fail("--sketch cannot be combined with --reference/--gallery (no shipped model takes both)")
    if model is None:
        model = DEFAULT_REFERENCE_MODEL if (reference is not None or gallery is not None) else "auto"
        model = DEFAULT_SKETCH_MODEL if sketch is not None else model
    inpainter = run(Inpainter, model, max_pixels=max_pixels)
    if not folder_mode:
        result, loaded = run(inpainter.fill_result, image, mask, reference, gallery, sketch,
                             None if box is None else parse_box(box),
                             None if reference_box is None else parse_box(reference_box))
        run(save_image, output, loaded.to_pil(result.image))
        if result.note:
            click.echo(f"note: {result.note}", err=True)
        click.echo(f"wrote {output} (model: {model})")
        return

    total = len(run(plan_folder, input_dir, mask_dir))
    counts = {"filled": 0, "copied": 0, "error": 0}
    for item in tqdm(fill_folder(inpainter.model, input_dir, mask_dir, output_dir,
                                 max_pixels=inpainter.max_pixels), total=total, unit="img", file=sys.stderr):
        counts[item.status] += 1
        if item.status != "filled":
            tqdm.write(f"{item.status}: {item.source}: {item.message}", file=sys.stderr)
    click.echo(f"filled {counts['filled']}, copied {counts['copied']} (empty mask), failed {counts['error']} -> {output_dir}")
    if counts["error"]:
        sys.exit(1)
