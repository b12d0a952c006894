"""``unmasked unmask``: remove worn face masks from a photo or a folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from unmasked.api import load_model
from unmasked.cli.common import MAX_PIXELS_HELP, parse_box, run
from unmasked.conventions import DEFAULT_MAX_PIXELS, load_image, save_image
from unmasked.conventions import save_mask as write_mask
from unmasked.data.datasets import list_images
from unmasked.hub import DEFAULT_REFERENCE_MODEL, DEFAULT_UNMASK_PRESET
from unmasked.pipelines.reference import Gallery, check_reference_box
from unmasked.pipelines.unmask import (
    MEAN_FACE_CHOICES,
    check_reference_options,
    load_segmenter,
    reference_detector,
    unmask_array,
)


@click.command("unmask")
@click.argument("photo", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the restored photo (a folder when PHOTO is a folder).")
@click.option("--model", default=None,
              help="Face model preset or .safetensors checkpoint.  "
                   f"[default: {DEFAULT_UNMASK_PRESET}; {DEFAULT_REFERENCE_MODEL} with --reference/--gallery]")
@click.option("--box", "boxes", multiple=True, metavar="X,Y,W,H", help="Face square to restore (skips detection); repeatable.")
@click.option("--detector", default="blazeface", show_default=True,
              type=click.Choice(["blazeface", "all", "auto", "hog", "cnn"]),
              help="blazeface: MediaPipe's BlazeFace + FaceMesh, made for faces under masks (milliseconds); dlib's "
                   "all: every face HOG or the CNN finds; auto: HOG, then HOG upsampled, then the CNN, stopping at "
                   "the first that finds a face.")
@click.option("--region", default="segmenter", show_default=True, type=click.Choice(["segmenter", "landmarks"]),
              help="segmenter: learned worn-mask segmenter (faces without a mask are left alone); "
                   "landmarks: the landmark heuristic (fills every face).")
@click.option("--grabcut/--no-grabcut", default=True, show_default=True,
              help="Grow the segmenter's worn mask by colour (GrabCut) over fabric it missed: a turned face's far "
                   "cheek, a printed logo.")
@click.option("--eye-skin/--no-eye-skin", default=True, show_default=True,
              help="With --grabcut: keep the skin just below the eyes out of the colour growth (a skin-coloured "
                   "mask's growth reached the lower eyelids).")
@click.option("--outline/--no-outline", default=False, show_default=True,
              help="Fill the part of the mask that lies beside the face (background, hair) from its surroundings, "
                   "and only the face within its outline with the face model: for masks reaching past the face.")
@click.option("--mean-face", type=click.Choice(list(MEAN_FACE_CHOICES)), default="on", show_default=True,
              help="Take the restored face's structure (nose, one closed mouth, chin) from a mean face warped onto "
                   "FaceMesh's guess of the hidden landmarks, keeping the fill's colour and shading: no banded or "
                   "doubled mouths, but a generic, smooth lower face. 'auto': only on faces whose fill runs in "
                   "horizontal bands. Not with --reference or --gallery.")
@click.option("--mean-texture/--no-mean-texture", default=True, show_default=True,
              help="With --mean-face: use the mean face with its finest detail put back (crisper lips, nostrils and "
                   "chin crease, Tiddeman et al.'s texture-enhanced prototype); --no-mean-texture: the plain, "
                   "softer average.")
@click.option("--mean-chroma/--no-mean-chroma", default=True, show_default=True,
              help="With --mean-face: take the lips' colour edge from the mean face too, at the photo's own "
                   "saturation (none on a black-and-white photo); --no-mean-chroma: luminance detail only.")
@click.option("--grain/--no-grain", default=True, show_default=True,
              help="Add the photo's own skin grain, synthesised from the visible skin above the mask, to the "
                   "restored face.")
@click.option("--second-look/--no-second-look", default=True, show_default=True,
              help="With --detector blazeface: when no masked face is found, look again at the detector's doubtful "
                   "boxes, each re-centred and zoomed out, and restore those on which a worn mask is found.")
@click.option("--ear-loops/--no-ear-loops", default=True, show_default=True,
              help="Also fill the mask's straps (ear loops) beside the restored region, from what lies around them.")
@click.option("--save-mask", type=click.Path(path_type=Path),
              help="Also write the detected worn mask(s) as a PNG (white = mask); a folder when PHOTO is a folder.")
@click.option("--debug-dir", type=click.Path(path_type=Path),
              help="Write each stage per face: aligned crop, mask probability, hole, filled crop.")
@click.option("--max-pixels", default=None, type=click.IntRange(min=1), help=MAX_PIXELS_HELP + "  [default: 40,000,000]")
@click.option("--reference", type=click.Path(path_type=Path),
              help="A photo of the same person, for a reference-guided --model (two_face).")
@click.option("--gallery", type=click.Path(path_type=Path),
              help="A folder of photos (flat, or one sub-folder per person) searched for each face's reference.")
@click.option("--reference-box", metavar="X,Y,W,H",
              help="The face square on the --reference photo; without it the reference's largest face is used.")
def unmask_cmd(photo, output, model, boxes, detector, region, grabcut, eye_skin, outline, mean_face, mean_texture, mean_chroma,
               grain, second_look, ear_loops, save_mask, debug_dir, max_pixels, reference, gallery, reference_box) -> None:
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
    parsed = [parse_box(b) for b in boxes]
    ref_box = None if reference_box is None else parse_box(reference_box)
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    if model is None:
        model = DEFAULT_REFERENCE_MODEL if (reference is not None or gallery is not None) else DEFAULT_UNMASK_PRESET
    face_model = run(load_model, model)
    if region == "segmenter":
        run(load_segmenter)
    run(check_reference_options, face_model, reference, gallery, ref_box)
    ref_rgb = None if reference is None else run(load_image, reference, max_pixels).rgb
    if ref_box is not None:
        run(check_reference_box, ref_box, ref_rgb.shape[:2])
    if gallery is not None:  # built once for a whole folder
        gallery = run(Gallery.build, gallery, size=face_model.working_size, detector=reference_detector(detector))

    def one(src: Path, dst: Path, mask_path: Path | None, debug: Path | None, echo) -> None:
        loaded = run(load_image, src, max_pixels)
        result = run(unmask_array, loaded.rgb, face_model, boxes=parsed or None, detector=detector, region=region,
                     grabcut=grabcut, eye_skin=eye_skin, outline=outline, mean_face=MEAN_FACE_CHOICES[mean_face],
                     mean_texture=mean_texture, mean_chroma=mean_chroma,
                     grain=grain, second_look=second_look, ear_loops=ear_loops,
                     keep_stages=debug is not None, reference=ref_rgb, gallery=gallery, reference_box=ref_box)
        run(save_image, dst, loaded.to_pil(result.image))
        for face in result.faces:
            what = (f"mask found ({100 * face.mask_area:.1f} % of the face crop), restored" if face.mask_found
                    else f"no mask ({100 * face.mask_area:.1f} % of the face crop), left untouched")
            if face.zoom != 1.0:
                what += f" (the mask ran off the face crop: crop zoomed out {face.zoom:g}x)"
            if face.mean_face:
                what += " with the mean face's structure"
                if face.band_ratio is not None:
                    what += f" (the fill's horizontal band ratio {face.band_ratio:.2f})"
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
            run(write_mask, mask_path, result.mask)
        if debug is not None:
            for i, st in enumerate(result.stages):
                run(save_image, debug / f"face{i}_1_aligned.png", st.aligned)
                if st.probability is not None:
                    run(write_mask, debug / f"face{i}_2_mask.png", st.probability > 0.5)
                    run(save_image, debug / f"face{i}_2_probability.png",
                        (st.probability * 255).round().astype("uint8").repeat(3).reshape(*st.probability.shape, 3))
                run(write_mask, debug / f"face{i}_3_hole.png", st.hole)
                if st.filled is not None:
                    run(save_image, debug / f"face{i}_4_filled.png", st.filled)

    if not photo.is_dir():
        one(photo, output, save_mask, debug_dir, lambda m: click.echo(m, err=m.startswith("note")))
        click.echo(f"wrote {output}")
        return

    sources = run(list_images, photo)
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
