"""``unmasked`` command line: parse, call a library function, print.

Heavy imports (torch, OpenCV) happen inside the commands so ``unmasked --help`` is instant.
Every user error ends in a one-line message and exit code 1 or 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

# errors a user can cause; anything else is a bug and keeps its traceback
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, IsADirectoryError, PermissionError)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except _USER_ERRORS as e:
        _fail(str(e))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="unmasked")
def main() -> None:
    """Deep image inpainting: fill holes in photos with learned models or classical baselines.

    Images are any RGB/RGBA/greyscale file Pillow reads; masks are images where white
    (> 127) marks the hole. Run `unmasked COMMAND --help` for each command's options.
    """


# --------------------------------------------------------------------------- models


@main.command("models")
def models_cmd() -> None:
    """List the trained presets, baselines and architectures that --model accepts."""
    from unmasked.hub import catalogue

    helpers = []
    for e in catalogue():
        if e.kind == "trained":
            line = f"{e.architecture} {e.kwargs} (model card: {e.path.with_suffix('.md')})"
            if e.task == "inpaint":
                click.echo(f"{e.name:24s} trained    {line}")
            else:  # the worn-mask segmenter, the identity embedder: used inside pipelines, never as --model
                helpers.append(f"{e.name:24s} {e.task:10s} {line}")
        elif e.kind == "auto":
            click.echo(f"{e.name:24s} pipeline   {e.description} (the default of `fill`)")
        else:
            kind = "architecture (needs a checkpoint)" if e.kind == "architecture" else "classical"
            click.echo(f"{e.name:24s} {kind}  {e.description}")
    if helpers:
        click.echo("\nhelper networks (the worn-mask segmenter of unmask, the identity embedder; not fill models, --model refuses them):")
        click.echo("\n".join(helpers))


# --------------------------------------------------------------------------- fill

MAX_PIXELS_HELP = "Refuse images with more pixels than this (checked before decoding)."


@main.command("fill")
@click.argument("image", required=False, type=click.Path(path_type=Path))
@click.option("--mask", "-m", "mask", type=click.Path(path_type=Path), help="Mask image (white = hole), same size as IMAGE.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Where to write the result (format from suffix).")
@click.option("--model", default=None,
              help="Model name (see `unmasked models`) or a .safetensors checkpoint.  "
                   "[default: auto (pconv_unet_faces128 on faces, telea elsewhere); "
                   "two_face_faces128 with --reference/--gallery]")
@click.option("--input-dir", type=click.Path(path_type=Path), help="Fill every image below this folder instead of IMAGE.")
@click.option("--mask-dir", type=click.Path(path_type=Path), help="Masks for --input-dir: same relative name (or NAME_mask.*).")
@click.option("--output-dir", type=click.Path(path_type=Path), help="Results for --input-dir, mirroring its tree.")
@click.option("--max-pixels", default=None, type=int, help=MAX_PIXELS_HELP + "  [default: 40,000,000]")
@click.option("--reference", type=click.Path(path_type=Path),
              help="A photo of the same person (reference-guided models such as two_face).")
@click.option("--gallery", type=click.Path(path_type=Path),
              help="A folder of photos (flat, or one sub-folder per person): the closest person's best photo "
                   "becomes the reference (index cached in the folder); none below the similarity threshold.")
@click.option("--sketch", type=click.Path(path_type=Path),
              help="Lines for the fill to follow (white = line, same size as IMAGE; only inside the hole counts): "
                   "DeepFill v2's user-guided mode. [default model with it: deepfill_v2-sketch]")
def fill_cmd(image, mask, output, model, input_dir, mask_dir, output_dir, max_pixels, reference, gallery,
             sketch) -> None:
    """Fill the hole of IMAGE given by --mask and write --output.

    Any size and mode in, same size and mode out; pixels outside the hole are copied
    byte for byte. Large images are filled crop by crop around each hole at the model's
    working size. An empty mask copies the image through with a note.

    \b
    Examples:
      unmasked fill photo.jpg --mask mask.png -o filled.png --model patchmatch
      unmasked fill --input-dir photos/ --mask-dir masks/ --output-dir filled/
      unmasked fill face.jpg --mask m.png -o out.png --reference other.jpg
      unmasked fill face.jpg --mask m.png -o out.png --sketch lines.png
    """
    from unmasked.api import DEFAULT_SKETCH_MODEL, Inpainter
    from unmasked.conventions import DEFAULT_MAX_PIXELS, save_image

    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    folder_mode = any(x is not None for x in (input_dir, mask_dir, output_dir))
    if folder_mode:
        if image is not None or mask is not None or output is not None:
            _fail("use either IMAGE --mask --output, or --input-dir --mask-dir --output-dir, not both")
        if None in (input_dir, mask_dir, output_dir):
            _fail("folder mode needs all of --input-dir, --mask-dir and --output-dir")
    elif image is None or mask is None or output is None:
        _fail("give IMAGE, --mask and --output (or the --input-dir/--mask-dir/--output-dir trio); see --help")

    if reference is not None and gallery is not None:
        _fail("give --reference or --gallery, not both")
    if folder_mode and (reference is not None or gallery is not None):
        _fail("--reference/--gallery work on one IMAGE, not with --input-dir")
    if folder_mode and sketch is not None:
        _fail("--sketch works on one IMAGE, not with --input-dir")
    if sketch is not None and (reference is not None or gallery is not None):
        _fail("--sketch cannot be combined with --reference/--gallery (no shipped model takes both)")
    if model is None:
        model = DEFAULT_REFERENCE_MODEL if (reference is not None or gallery is not None) else "auto"
        model = DEFAULT_SKETCH_MODEL if sketch is not None else model
    inpainter = _run(Inpainter, model, max_pixels=max_pixels)
    if not folder_mode:
        result, loaded = _run(inpainter.fill_result, image, mask, reference, gallery, sketch)
        _run(save_image, output, loaded.to_pil(result.image))
        if result.note:
            click.echo(f"note: {result.note}", err=True)
        click.echo(f"wrote {output} (model: {model})")
        return

    from tqdm import tqdm

    from unmasked.pipelines.batch import fill_folder, plan_folder

    total = len(_run(plan_folder, input_dir, mask_dir))
    counts = {"filled": 0, "copied": 0, "error": 0}
    for item in tqdm(fill_folder(inpainter.model, input_dir, mask_dir, output_dir,
                                 max_pixels=inpainter.max_pixels), total=total, unit="img", file=sys.stderr):
        counts[item.status] += 1
        if item.status != "filled":
            tqdm.write(f"{item.status}: {item.source}: {item.message}", file=sys.stderr)
    click.echo(f"filled {counts['filled']}, copied {counts['copied']} (empty mask), failed {counts['error']} -> {output_dir}")
    if counts["error"]:
        sys.exit(1)


# --------------------------------------------------------------------------- masks


@main.group("masks")
def masks_group() -> None:
    """Generate hole masks (free-form strokes, irregular, boxes, bucketed by hole ratio; worn face masks)."""


@masks_group.command("generate")
@click.option("--kind", required=True, type=click.Choice(["free_form", "free_form_box", "irregular", "box", "centre_box", "bucketed"]),
              help="free_form: DeepFill v2 strokes; irregular: PConv-style; bucketed: hole ratio in a PConv bucket.")
@click.option("--count", default=100, show_default=True, help="Number of masks (for bucketed without --bucket: per each of the 12 cells).")
@click.option("--size", default=256, show_default=True, help="Mask side in pixels.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder (PNG masks + masks.csv).")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same masks.")
@click.option("--bucket", type=click.IntRange(0, 5), help="Bucketed only: hole-ratio bucket 0..5 = (0.01,0.1] .. (0.5,0.6].")
@click.option("--border/--no-border", default=None, help="Bucketed only (with --bucket): holes touch the border or not.")
def masks_generate_cmd(kind, count, size, out_dir, seed, bucket, border) -> None:
    """Write COUNT masks of KIND as white-on-black PNGs and a masks.csv of their statistics."""
    from unmasked.masks import generate_masks

    kwargs = {}
    if bucket is not None or border is not None:
        if kind != "bucketed":
            _fail("--bucket and --border/--no-border apply to --kind bucketed only")
        if bucket is None or border is None:
            _fail("give both --bucket and --border/--no-border (or neither, for all 12 cells)")
        kwargs = {"bucket": bucket, "touches_border": border}
    paths = _run(generate_masks, kind, count, size, out_dir, seed=seed, **kwargs)
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
    from tqdm import tqdm

    from unmasked.data.datasets import list_images
    from unmasked.data.face_masks import mask_folder
    from unmasked.masks.templates import TemplateSet

    template_set = _run(TemplateSet.from_folder, templates) if templates is not None else None
    total = len(_run(list_images, input_dir))
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
    except _USER_ERRORS as e:
        _fail(str(e))
    click.echo(f"masked {faces} faces in {counts['masked']} images; {counts['no_face']} images without a face; "
               f"{counts['error']} unreadable -> {output_dir}")


# --------------------------------------------------------------------------- unmask

DEFAULT_FACE_MODEL = "pconv_unet_faces128"  # = unmasked.api.DEFAULT_FACE_PRESET (kept literal: fast --help)
#: used by `fill` and `unmask` when --reference or --gallery is given without --model
DEFAULT_REFERENCE_MODEL = "two_face_faces128"


def _parse_box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected x,y,w,h as four integers, got {text!r}") from None
    return x, y, w, h


@main.command("unmask")
@click.argument("photo", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the restored photo (a folder when PHOTO is a folder).")
@click.option("--model", default=None,
              help="Face model preset or .safetensors checkpoint.  "
                   "[default: pconv_unet_faces128; two_face_faces128 with --reference/--gallery]")
@click.option("--box", "boxes", multiple=True, metavar="X,Y,W,H", help="Face square to restore (skips detection); repeatable.")
@click.option("--detector", default="blazeface", show_default=True,
              type=click.Choice(["blazeface", "all", "auto", "hog", "cnn"]),
              help="blazeface: MediaPipe's BlazeFace + FaceMesh, made for faces under masks (milliseconds); dlib's "
                   "all: every face HOG or the CNN finds; auto: HOG, then HOG upsampled, then the CNN, stopping at "
                   "the first that finds a face.")
@click.option("--region", default="segmenter", show_default=True, type=click.Choice(["segmenter", "landmarks"]),
              help="segmenter: learned worn-mask segmenter (faces without a mask are left alone); "
                   "landmarks: the landmark heuristic (fills every face).")
@click.option("--save-mask", type=click.Path(path_type=Path),
              help="Also write the detected worn mask(s) as a PNG (white = mask); a folder when PHOTO is a folder.")
@click.option("--debug-dir", type=click.Path(path_type=Path),
              help="Write each stage per face: aligned crop, mask probability, hole, filled crop.")
@click.option("--max-pixels", default=None, type=int, help=MAX_PIXELS_HELP + "  [default: 40,000,000]")
@click.option("--reference", type=click.Path(path_type=Path),
              help="A photo of the same person, for a reference-guided --model (two_face).")
@click.option("--gallery", type=click.Path(path_type=Path),
              help="A folder of photos (flat, or one sub-folder per person) searched for each face's reference.")
def unmask_cmd(photo, output, model, boxes, detector, region, save_mask, debug_dir, max_pixels, reference,
               gallery) -> None:
    """Remove worn face masks in PHOTO (a file or a folder) and restore the faces beneath.

    Each face is found (or given with --box) and aligned; a learned segmenter finds the worn
    mask on it (a face without a mask is left untouched), the mask region, dilated a little,
    is filled by the face model and blended back; pixels away from masked faces are unchanged.

    \b
    Example:
      unmasked unmask family.jpg -o family_unmasked.png --save-mask family_mask.png
      unmasked unmask group.jpg -o out.png --box 120,80,160,160 --debug-dir stages/
      unmasked unmask photos/ -o restored/
      unmasked unmask photo.jpg -o out.png --gallery family/
    """
    from unmasked.api import load_model
    from unmasked.conventions import DEFAULT_MAX_PIXELS, load_image, save_image
    from unmasked.conventions import save_mask as write_mask
    from unmasked.pipelines.unmask import load_segmenter, reference_detector, unmask_array

    parsed = [_parse_box(b) for b in boxes]
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    if model is None:
        model = DEFAULT_REFERENCE_MODEL if (reference is not None or gallery is not None) else DEFAULT_FACE_MODEL
    face_model = _run(load_model, model)
    if region == "segmenter":
        _run(load_segmenter)
    if reference is not None and gallery is not None:
        _fail("give --reference or --gallery, not both")
    if (reference is not None or gallery is not None) and not face_model.uses_reference:
        _fail(f"--reference/--gallery need a reference-guided --model (two_face); {model!r} does not use one")
    ref_rgb = None if reference is None else _run(load_image, reference, max_pixels or DEFAULT_MAX_PIXELS).rgb
    if gallery is not None:
        from unmasked.pipelines.reference import Gallery

        gallery = _run(Gallery.build, gallery, size=face_model.working_size, detector=reference_detector(detector))

    def one(src: Path, dst: Path, mask_path: Path | None, debug: Path | None, echo) -> None:
        loaded = _run(load_image, src, max_pixels)
        result = _run(unmask_array, loaded.rgb, face_model, boxes=parsed or None, detector=detector, region=region,
                      keep_stages=debug is not None, reference=ref_rgb, gallery=gallery)
        _run(save_image, dst, loaded.to_pil(result.image))
        for face in result.faces:
            what = (f"mask found ({100 * face.mask_area:.1f} % of the face crop), restored" if face.mask_found
                    else f"no mask ({100 * face.mask_area:.1f} % of the face crop), left untouched")
            if face.zoom != 1.0:
                what += f" (the mask ran off the face crop: crop zoomed out {face.zoom:g}x)"
            if face.reference == "given":
                what += " with the reference photo"
            elif face.reference is not None:
                what += f" with reference {face.reference} (similarity {face.reference_similarity:.3f})"
            elif gallery is not None and face.mask_found:
                what += " without a reference (no gallery face similar enough)"
            echo(f"{src.name}: face at x,y,w,h={','.join(map(str, face.box))} (found by {face.detector}): {what}")
        if result.note:
            echo(f"note: {src.name}: {result.note}")
        if mask_path is not None:
            _run(write_mask, mask_path, result.mask)
        if debug is not None:
            for i, st in enumerate(result.stages):
                _run(save_image, debug / f"face{i}_1_aligned.png", st.aligned)
                if st.probability is not None:
                    _run(write_mask, debug / f"face{i}_2_mask.png", st.probability > 0.5)
                    _run(save_image, debug / f"face{i}_2_probability.png",
                         (st.probability * 255).round().astype("uint8").repeat(3).reshape(*st.probability.shape, 3))
                _run(write_mask, debug / f"face{i}_3_hole.png", st.hole)
                if st.filled is not None:
                    _run(save_image, debug / f"face{i}_4_filled.png", st.filled)

    if not photo.is_dir():
        one(photo, output, save_mask, debug_dir, lambda m: click.echo(m, err=m.startswith("note")))
        click.echo(f"wrote {output}")
        return

    from tqdm import tqdm

    from unmasked.data.datasets import list_images

    sources = _run(list_images, photo)
    failed = 0
    for src in tqdm(sources, unit="img", file=sys.stderr):
        rel = src.relative_to(photo)
        try:
            one(src, output / rel, None if save_mask is None else (save_mask / rel).with_name(f"{rel.stem}_mask.png"),
                None if debug_dir is None else debug_dir / rel.with_suffix(""), lambda m: tqdm.write(m, file=sys.stderr))
        except click.ClickException as e:
            failed += 1
            tqdm.write(f"error: {src}: {e.message}", file=sys.stderr)
    click.echo(f"wrote {len(sources) - failed} images to {output}; {failed} failed")
    if failed:
        sys.exit(1)


# --------------------------------------------------------------------------- eval


@main.command("eval")
@click.option("--model", "models", multiple=True, required=True, help="Model name or checkpoint; repeat to compare several.")
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder of evaluation images (recursive).")
@click.option("--split", default="all", show_default=True, type=click.Choice(["all", "train", "val"]),
              help="train/val: treat --images as <identity>/<image> folders and keep one side of the identity split.")
@click.option("--crop", default="center", show_default=True, type=click.Choice(["center", "celeba", "resize"]),
              help="celeba: rows 20..198 of 178x218 img_align_celeba crops.")
@click.option("--size", default=128, show_default=True, help="Evaluation resolution (square).")
@click.option("--limit", type=int, help="Use at most this many images (spread over the set).")
@click.option("--masks", "mask_dir", type=click.Path(path_type=Path), help="Folder of mask PNGs (e.g. the NVIDIA irregular test set).")
@click.option("--mask-kind", default="bucketed", show_default=True,
              type=click.Choice(["bucketed", "free_form", "free_form_box", "irregular", "box", "centre_box", "face"]),
              help="Generated masks when --masks is not given; face: a synthetic worn face mask on each (aligned) face.")
@click.option("--per-cell", default=5, show_default=True, help="Masks per (bucket, border) cell.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/eval", show_default=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--realism/--no-realism", default=True, show_default=True,
              help="Also run the realism test (a classifier two-sample test, ~1 min per model on 2 cores).")
def eval_cmd(models, images, split, crop, size, limit, mask_dir, mask_kind, per_cell, seed, out_dir, realism) -> None:
    """Score models and baselines per hole-ratio bucket x border (L1 %, PSNR, SSIM, detail %).

    Writes report.md, records.csv, summary.csv/json and psnr_by_bucket.png to --out and
    prints the PSNR table and the detail table (the fill's gradient as a % of the photo's:
    100 = as much structure, a blur scores far below). Face-mask runs (--mask-kind face)
    also report the dlib identity distance of each filled face to the original.

    \b
    Example (faces, identity split, 128x128, Telea vs Navier-Stokes vs PatchMatch):
      unmasked eval --model telea --model navier_stokes --model patchmatch \\
        --images ../shared/data/faces/celeba_align --split val --crop celeba --size 128
    """
    from tqdm import tqdm

    from unmasked.evaluation.report import markdown_table, realism_table, summarise
    from unmasked.evaluation.run import run_evaluation

    bars: dict[str, tqdm] = {}

    def progress(model: str, done: int, total: int) -> None:
        bar = bars.get(model) or bars.setdefault(model, tqdm(total=total, desc=model, unit="img", file=sys.stderr))
        bar.update(1)
        if done == total:
            bar.close()

    result = _run(run_evaluation, list(models), images, out_dir, size=size, masks=mask_dir, mask_kind=mask_kind,
                  per_cell=per_cell, split=split, crop=crop, limit=limit, seed=seed, progress=progress, realism=realism)
    summary = summarise(result.records)
    click.echo(markdown_table(summary, "psnr"))
    click.echo("\n" + markdown_table(summary, "detail"))
    if result.realism:
        click.echo("\nrealism (classifier two-sample test, 0.5 = indistinguishable from the photos):\n"
                   + realism_table(result.realism))
    click.echo(f"\nfull report: {result.paths['report_md']}")


@main.command("eval-unmask")
@click.option("--filler", "fillers", multiple=True, default=("unmask", "telea", "navier_stokes"), show_default=True,
              help="'unmask' (the whole pipeline, default face model), 'unmask:<model or checkpoint>' (either with "
                   "'+seamless': the gradient-domain paste-back), or a classical "
                   "filler given the true mask (telea, navier_stokes, patchmatch); repeatable.")
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="<identity>/<image> folder of FFHQ-aligned faces; only its held-out (val) identities are used.")
@click.option("--size", default=256, show_default=True, help="Face resolution the result is scored at.")
@click.option("--limit", default=200, show_default=True, help="Faces (spread over the held-out identities).")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic masks and the realism classifier.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table (Markdown) here.")
def eval_unmask_cmd(fillers, images, size, limit, seed, out_file) -> None:
    """Score mask removal end to end: synthetic worn masks on held-out faces, the unmask pipeline
    finding face and mask itself, scored against the unmasked face (PSNR, SSIM, detail, dlib
    identity distance, realism: a classifier two-sample test, 0.5 = indistinguishable from photos).

    \b
    Example:
      unmasked eval-unmask --images ../shared/data/faces/celeba_wild256 --limit 200
    """
    from unmasked.evaluation.run import load_eval_images
    from unmasked.evaluation.unmask_eval import evaluate_unmask, format_rows, masked_faces

    names, pixels = _run(load_eval_images, images, size, split="val", limit=limit)
    faces = masked_faces(names, pixels, seed)
    report = _run(evaluate_unmask, list(fillers), faces, seed=seed)
    table = format_rows(report["rows"])
    click.echo(table)
    if out_file:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(table + "\n")


@main.command("eval-identity")
@click.option("--images", "roots", multiple=True, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="<identity>/<image> folder; repeatable. Only its held-out (val) identities are used.")
@click.option("--embedder", "embedders", multiple=True, default=("face_identity",), show_default=True,
              help="Shipped embedder name or .safetensors checkpoint; repeatable.")
@click.option("--mobilefacenet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also score the research MobileFaceNet (e.g. ../shared/weights/mobilefacenet_arcface_casia.ckpt).")
@click.option("--cache", "cache_dir", default="runs/identity-cache", show_default=True, type=click.Path(path_type=Path),
              help="Where dlib descriptors, aligned crops and landmarks are kept between runs.")
@click.option("--per-identity", default=8, show_default=True, help="Images per held-out identity.")
@click.option("--seed", default=0, show_default=True, help="Seed of the pair sampling.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table (Markdown) here.")
def eval_identity_cmd(roots, embedders, mobilefacenet, cache_dir, per_identity, seed, out_file) -> None:
    """Face verification ROC-AUC of dlib, MobileFaceNet and our embedders on the same held-out pairs.

    \b
    Example:
      unmasked eval-identity --images ../shared/data/faces/celeba_wild256 \\
        --images ../shared/data/faces/celeba_align \\
        --mobilefacenet ../shared/weights/mobilefacenet_arcface_casia.ckpt
    """
    from unmasked.evaluation.identity import evaluate_identity, format_table

    report = _run(evaluate_identity, list(roots), cache_dir, embedders=list(embedders), mobilefacenet=mobilefacenet,
                  per_identity=per_identity, seed=seed, log=lambda m: click.echo(m, err=True))
    table = format_table(report)
    click.echo(table)
    if out_file:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(table + "\n")


# --------------------------------------------------------------------------- train


@main.command("train")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Run name: the run folder is OUT_DIR/NAME.")
@click.option("--out_dir", "--out-dir", "out_dir", help="Folder holding run folders.  [config default: runs]")
@click.option("--gpus", type=int, help="Train on this many GPUs (sets accelerator=gpu).")
@click.option("--devices", type=int, help="Processes on the configured accelerator; >1 on CPU uses DDP over gloo.")
@click.option("--resume_checkpoint", "--resume-checkpoint", "resume_checkpoint",
              help="A .ckpt to resume from, or 'last' for this run's last.ckpt (ignored if absent).")
@click.option("--batch_size", "--batch-size", "batch_size", type=int)
@click.option("--lr_g", "--lr-g", "lr_g", type=float, help="Generator learning rate.")
@click.option("--lr_d", "--lr-d", "lr_d", type=float, help="Discriminator learning rate.")
@click.option("--d_every", "--d-every", "d_every", type=int, help="Discriminator step once per N batches.")
@click.option("--max_steps", "--max-steps", "max_steps", type=int, help="Total batches to train (including resumed ones).")
@click.option("--ckpt_every", "--ckpt-every", "ckpt_every", type=int, help="Batches between checkpoints.")
@click.option("--precision", help="Lightning precision, e.g. 32-true or bf16-mixed.")
@click.option("--num_workers", "--num-workers", "num_workers", type=int, help="Data loader worker processes.")
@click.option("--threads", type=int, help="torch intra-op threads per process.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any other config key, YAML-parsed, dotted for sections: --set data.size=64.")
def train_cmd(config, sets, gpus, **options) -> None:
    """Train (or resume) the model described by CONFIG (a YAML file, see configs/).

    Checkpoints every --ckpt_every batches (last.ckpt, written atomically), exports the
    generator as generator.safetensors (usable with `unmasked fill --model`), scores a fixed
    validation set, writes sample grids, and logs to CSV and TensorBoard in the run folder.

    \b
    Example:
      unmasked train configs/deepfillv2_faces-128.yaml --max_steps 2000 --resume_checkpoint last
    """
    import yaml

    overrides = {k: v for k, v in options.items() if v is not None}  # options not given keep the config's
    if gpus is not None:
        overrides["accelerator"], overrides["devices"] = "gpu", gpus
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"--set needs KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)

    from unmasked.training import fit, load_config

    cfg = _run(load_config, config, overrides)
    module = _run(fit, cfg)
    click.echo(f"trained {module.steps_done} steps; validation {module.last_val}; run folder {cfg.run_dir}")


# --------------------------------------------------------------------------- serve


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; the default is this machine only.")
@click.option("--port", default=8000, show_default=True, help="TCP port.")
@click.option("--workers", default=2, show_default=True, help="Requests computed at the same time (threads).")
@click.option("--queue", "queue_size", default=32, show_default=True,
              help="Requests allowed to wait for a worker; beyond that the server answers 503.")
@click.option("--max-pixels", default=16_000_000, show_default=True, help="Per image, checked from the header before decoding.")
@click.option("--max-body-mb", default=32.0, show_default=True, help="Largest request body, in MiB.")
@click.option("--model", "models", multiple=True, help="Offer only these models (repeatable); default: all presets and baselines.")
@click.option("--study-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Realism study images (real/ + one folder per model, see `unmasked study prepare`); enables /study.")
@click.option("--study-db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file for the study's ratings.  [default: STUDY_DIR/ratings.sqlite]")
def serve_cmd(host, port, workers, queue_size, max_pixels, max_body_mb, models, study_dir, study_db) -> None:
    """Run the web app and REST API (http://HOST:PORT/, API docs at /docs).

    \b
    Example:
      unmasked serve                      # then open http://127.0.0.1:8000/
      unmasked serve --study-dir study/ --study-db ratings.sqlite
    """
    import uvicorn

    from unmasked.server import ServerSettings, create_app

    if study_db is not None and study_dir is None:
        _fail("--study-db needs --study-dir")
    settings = ServerSettings(max_pixels=max_pixels, max_body_bytes=int(max_body_mb * 1024 * 1024), workers=workers,
                              queue_size=queue_size, models=list(models) or None, study_dir=study_dir, study_db=study_db)
    app = _run(create_app, settings)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach this address can use the server", err=True)
    click.echo(f"unmasked: open http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  (API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")


# --------------------------------------------------------------------------- study


@main.group("study")
def study_group() -> None:
    """Realism study: prepare the images, then collect 1-10 ratings at /study (unmasked serve --study-dir)."""


@study_group.command("prepare")
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of FFHQ-aligned face crops (e.g. celeba_wild256).")
@click.option("--model", "models", multiple=True, required=True, help="Model whose fills are rated (repeatable).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Study folder to write.")
@click.option("--count", default=20, show_default=True, help="Faces per source (real and each model).")
@click.option("--size", default=128, show_default=True, help="Side of the square images.")
@click.option("--seed", default=0, show_default=True)
def study_prepare_cmd(images, models, out_dir, count, size, seed) -> None:
    """Write OUT/real/ (untouched faces) and OUT/<model>/ (other faces, worn-mask region filled)."""
    from unmasked.server.study import prepare_study

    written = _run(prepare_study, images, list(models), out_dir, count=count, size=size, seed=seed)
    click.echo(f"wrote {', '.join(f'{n} {s}' for s, n in written.items())} -> {out_dir}; "
               f"run: unmasked serve --study-dir {out_dir}")


@study_group.command("report")
@click.argument("db", type=click.Path(path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Histogram figure to write.  [default: DB with suffix _report.png]")
def study_report_cmd(db, plot_path) -> None:
    """Print the rating histogram per model next to the real photos' and plot it."""
    from unmasked.server.study import plot_report, rating_histograms, report_table

    hist = _run(rating_histograms, db)
    if not hist:
        _fail(f"no ratings in {db} yet")
    click.echo(report_table(hist))
    out = plot_report(hist, plot_path or db.with_name(db.stem + "_report.png"))
    click.echo(f"\nplot: {out}")


if __name__ == "__main__":
    main()
