"""The evaluation's figure: PSNR and ℓ1 per hole-ratio bucket and model (``psnr_by_bucket.png``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# the object API with the Agg canvas: no pyplot, no global backend
from matplotlib.figure import Figure

from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_label


def plot_by_bucket(summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    """PSNR (top) and ℓ1 % (bottom) vs hole-ratio bucket per model; left no border, right border."""
    models = list(dict.fromkeys(str(row["model"]) for row in summary))
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey="row")
    x_ticks = range(len(HOLE_RATIO_BUCKETS))
    for col, border in enumerate((False, True)):
        for row_i, (metric, ylabel) in enumerate((("psnr", "PSNR (dB) ↑"), ("l1", "ℓ1 (%) ↓"))):
            ax = axes[row_i][col]
            for model in models:
                points = sorted(
                    (r["bucket"], r[metric])
                    for r in summary
                    if r["model"] == model and r["bucket"] != "all" and r["touches_border"] is border
                )
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", label=model)
            if row_i == 0:
                ax.set_title("hole touches border" if border else "hole inside (no border)")
            if col == 0:
                ax.set_ylabel(ylabel)
            ax.set_xticks(list(x_ticks), [bucket_label(b) for b in x_ticks], rotation=30)
            ax.grid(alpha=0.3)
        axes[1][col].set_xlabel("hole ratio")
    if models:
        axes[0][0].legend(fontsize="small")
    fig.savefig(path, dpi=100)
