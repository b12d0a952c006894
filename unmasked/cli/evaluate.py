"""``unmasked eval``, ``eval-unmask``, ``eval-identity``: the evaluations."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from unmasked.cli.common import run
from unmasked.evaluation.identity import evaluate_identity, format_table
from unmasked.evaluation.report import markdown_table, realism_table, summarise
from unmasked.evaluation.run import load_eval_images, run_evaluation
from unmasked.evaluation.unmask_eval import evaluate_unmask, format_rows, masked_faces


def write_table(path: Path, table: str) -> None:
    """Write a Markdown table (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")


@click.command("eval")
@click.option("--model", "models", multiple=True, required=True, help="Model name or checkpoint; repeat to compare several.")
@click.option("--images", required=True, type=click.Path(path_type=Path), help="Folder of evaluation images (recursive).")
@click.option("--split", default="all", show_default=True, type=click.Choice(["all", "train", "val"]),
              help="train/val: keep one side of the split (see --split-by).")
@click.option("--split-by", default="identity", show_default=True, type=click.Choice(["identity", "file"]),
              help="identity: --images holds <identity>/<image> folders, split (and the realism test's halves) by "
                   "identity; file: a fixed 1-in-5 slice of the files, as training on a folder of photos holds out.")
@click.option("--crop", default="center", show_default=True, type=click.Choice(["center", "celeba", "resize"]),
              help="celeba: rows 20..198 of 178x218 img_align_celeba crops.")
@click.option("--size", default=128, show_default=True, type=click.IntRange(min=1), help="Evaluation resolution (square).")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many images (spread over the set).")
@click.option("--masks", "mask_dir", type=click.Path(path_type=Path), help="Folder of mask PNGs (e.g. the NVIDIA irregular test set).")
@click.option("--mask-kind", default="bucketed", show_default=True,
              type=click.Choice(["bucketed", "free_form", "free_form_box", "irregular", "box", "centre_box", "object", "face"]),
              help="Generated masks when --masks is not given; face: a synthetic worn face mask on each (aligned) face.")
@click.option("--per-cell", default=5, show_default=True, help="Masks per (bucket, border) cell.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/eval", show_default=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--realism/--no-realism", default=True, show_default=True,
              help="Also run the realism test (a classifier two-sample test, ~1 min per model on 2 cores).")
@click.option("--realism-patch", default="box", show_default=True, type=click.Choice(["box", "deepest"]),
              help="What the realism test looks at: box = the square around the whole hole (faces); deepest = "
                   "64 px around the hole's deepest pixel at full resolution (photos with scattered holes).")
def eval_cmd(models, images, split, split_by, crop, size, limit, mask_dir, mask_kind, per_cell, seed, out_dir, realism,
             realism_patch) -> None:
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
    bars: dict[str, tqdm] = {}

    def progress(model: str, done: int, total: int) -> None:
        bar = bars.get(model) or bars.setdefault(model, tqdm(total=total, desc=model, unit="img", file=sys.stderr))
        bar.update(1)
        if done == total:
            bar.close()

    result = run(run_evaluation, list(models), images, out_dir, size=size, masks=mask_dir, mask_kind=mask_kind,
                 per_cell=per_cell, split=split, split_by=split_by, crop=crop, limit=limit, seed=seed, progress=progress, realism=realism,
                 realism_patch=realism_patch)
    summary = summarise(result.records)
    click.echo(markdown_table(summary, "psnr"))
    click.echo("\n" + markdown_table(summary, "detail"))
    if result.realism:
        click.echo("\nrealism (classifier two-sample test, 0.5 = indistinguishable from the photos):\n"
                   + realism_table(result.realism))
    click.echo(f"\nfull report: {result.paths['report_md']}")


@click.command("eval-unmask")
@click.option("--filler", "fillers", multiple=True, default=("unmask", "telea", "navier_stokes"), show_default=True,
              help="'unmask' (the whole pipeline, default face model), 'unmask:<model or checkpoint>' (either with "
                   "options: '+seamless', the gradient-domain paste-back; '+nograbcut', the segmenter's mask not grown "
                   "by colour; '+cropres', pasted back from the model's crop; '+outline', the part beside the face "
                   "filled from the background; '+meanface', the structure from the mean face on every face (the default); '+automeanface', only on banded fills; '+nomeanface', on none; '+nograin', without the photo's skin grain; '+nosecondlook', no second look for faces the detector passed over; '+noearloops', the mask's straps left as they are; '+noeyeskin', colour growth free to take the skin below the eyes; '+nophotopx', the hole dilated by 3 % of the crop only, not at least 2.5 photo pixels; '+noeyecheck', the fabric inside an eye's guard kept even where the eye's landmarks lie on it), or a classical "
                   "filler given the true mask (telea, navier_stokes, patchmatch); repeatable.")
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="<identity>/<image> folder of FFHQ-aligned faces; only its held-out (val) identities are used.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Face resolution the result is scored at.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(min=1),
              help="Faces (spread over the held-out identities).")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic masks and the realism classifier.")
@click.option("--edge-blur", default=0.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Soften each synthetic mask's edge by a Gaussian of this many px (of --size): 0 pastes it sharp; "
                   "3.5 at 256 makes it as soft as on real photos (benchmarks/mask_edges.py).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table (Markdown) here.")
@click.option("--kid-weights", type=click.Path(exists=True, dir_okay=False),
              help="The research VGG-19 (../shared/weights/vgg19_relu3_1.pth): also report KID of the fills' VGG "
                   "texture statistics against the photos' (a second realism measure).")
def eval_unmask_cmd(fillers, images, size, limit, seed, edge_blur, out_file, kid_weights) -> None:
    """Score mask removal end to end: synthetic worn masks on held-out faces, the unmask pipeline
    finding face and mask itself, scored against the unmasked face (PSNR, SSIM, detail, dlib
    identity distance, realism: a classifier two-sample test, 0.5 = indistinguishable from photos).

    \b
    Example:
      unmasked eval-unmask --images ../shared/data/faces/celeba_wild256 --limit 200
    """
    names, pixels = run(load_eval_images, images, size, split="val", limit=limit)
    faces = masked_faces(names, pixels, seed, edge_blur)
    report = run(evaluate_unmask, list(fillers), faces, seed=seed, kid_weights=kid_weights)
    table = format_rows(report["rows"])
    click.echo(table)
    if out_file:
        run(write_table, out_file, table)


@click.command("eval-identity")
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
    report = run(evaluate_identity, list(roots), cache_dir, embedders=list(embedders), mobilefacenet=mobilefacenet,
                 per_identity=per_identity, seed=seed, log=lambda m: click.echo(m, err=True))
    table = format_table(report)
    click.echo(table)
    if out_file:
        run(write_table, out_file, table)
