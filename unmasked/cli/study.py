"""``unmasked study``: prepare and report the realism study."""

from __future__ import annotations

from pathlib import Path

import click

from unmasked.cli.common import fail, run
from unmasked.server.study import plot_report, prepare_study, rating_histograms, report_table


@click.group("study")
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
    written = run(prepare_study, images, list(models), out_dir, count=count, size=size, seed=seed)
    click.echo(f"wrote {', '.join(f'{n} {s}' for s, n in written.items())} -> {out_dir}; "
               f"run: unmasked serve --study-dir {out_dir}")


@study_group.command("report")
@click.argument("db", type=click.Path(path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Histogram figure to write.  [default: DB with suffix _report.png]")
def study_report_cmd(db, plot_path) -> None:
    """Print the rating histogram per model next to the real photos' and plot it."""
    hist = run(rating_histograms, db)
    if not hist:
        fail(f"no ratings in {db} yet")
    click.echo(report_table(hist))
    out = run(plot_report, hist, plot_path or db.with_name(db.stem + "_report.png"))
    click.echo(f"\nplot: {out}")
