"""Aggregate per-sample scores by hole-ratio bucket and write a report (CSV, JSON, Markdown, plot).

The grouping follows the Partial Convolutions evaluation protocol (Liu et al., "Image
Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018, Sec. 5.1 / Table 1):
six hole-ratio buckets (0.01, 0.1] ... (0.5, 0.6], each split by whether the hole touches the
image border, reporting ℓ1 %, PSNR and SSIM (Wang et al., IEEE TIP 2004). The buckets
themselves live in :mod:`unmasked.masks.stats`.

A *record* is one (model, image, mask) sample, a dict with the keys of :data:`RECORD_FIELDS`::

    {"model": str, "image": str, "mask": str, "hole_ratio": float, "bucket": int | None,
     "touches_border": bool, "l1": float, "psnr": float, "ssim": float, "seconds": float}

and, optionally, the keys of :data:`OPTIONAL_METRICS` (float, or None where not measured).

``bucket`` is None when the hole ratio lies outside all six buckets; such records count only
in the model's overall row. PSNR of identical images is ``inf`` per sample; every PSNR is
capped at :data:`~unmasked.metrics.PSNR_CAP_DB` (100 dB) before averaging, so
means stay finite.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unmasked.evaluation.plots import plot_by_bucket
from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_label
from unmasked.metrics import PSNR_CAP_DB, SSIM_WIN_SIZE

RECORD_FIELDS: tuple[str, ...] = (
    "model", "image", "mask", "hole_ratio", "bucket", "touches_border", "l1", "psnr", "ssim", "seconds",
)  # fmt: skip

#: metrics averaged by :func:`summarise`
SUMMARY_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim", "seconds")

#: metrics a record may carry (None when not measured for it): averaged over the records
#: that have them, reported only when some record does. ``detail``: hole detail % of the
#: original (:func:`~unmasked.metrics.detail_percent`); ``identity``: dlib
#: descriptor distance of the filled face to the original (face evaluations)
OPTIONAL_METRICS: tuple[str, ...] = ("detail", "identity")

SUMMARY_FIELDS: tuple[str, ...] = ("model", "bucket", "bucket_label", "touches_border", "n", *SUMMARY_METRICS)


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is titled, formatted and ranked in tables."""

    title: str
    higher_is_better: bool
    decimals: int
    #: when set, the best value is the one closest to it (``higher_is_better`` is then unused)
    target: float | None = None

    @property
    def direction(self) -> str:
        """"higher is better", "lower is better" or "closer to T is better"."""
        if self.target is not None:
            return f"closer to {self.target:g} is better"
        return "higher is better" if self.higher_is_better else "lower is better"

    def best(self, values) -> float:
        """The best of ``values`` by this metric's direction."""
        values = list(values)
        if self.target is not None:
            return min(values, key=lambda v: abs(v - self.target))
        return max(values) if self.higher_is_better else min(values)


METRICS: dict[str, MetricInfo] = {
    "l1": MetricInfo("ℓ1 (%)", higher_is_better=False, decimals=2),
    "psnr": MetricInfo("PSNR (dB)", higher_is_better=True, decimals=2),
    "ssim": MetricInfo("SSIM", higher_is_better=True, decimals=4),
    "seconds": MetricInfo("Time (s / image)", higher_is_better=False, decimals=3),
    "detail": MetricInfo("Detail in the hole (% of the original's gradient)", higher_is_better=True, decimals=1,
                         target=100.0),
    "identity": MetricInfo("Identity distance (dlib descriptor, filled vs original face)", higher_is_better=False,
                           decimals=4),
}

_BORDER_TEXT = {False: "no", True: "yes", None: "both"}


# ----------------------------------------------------------------------------- aggregation


def _check_record(i: int, record: Mapping[str, Any]) -> None:
    missing = [k for k in RECORD_FIELDS if k not in record]
    if missing:
        raise ValueError(f"record {i} lacks keys {missing}; a record needs {list(RECORD_FIELDS)}")
    bucket = record["bucket"]
    valid = isinstance(bucket, int) and not isinstance(bucket, bool) and 0 <= bucket < len(HOLE_RATIO_BUCKETS)
    if bucket is not None and not valid:
        raise ValueError(
            f"record {i}: bucket must be None or an int in 0..{len(HOLE_RATIO_BUCKETS) - 1}, got {bucket!r}"
        )


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _summary_row(model: str, bucket: int | str, border: bool | None, group: list[Mapping[str, Any]], psnr_cap: float):
    row: dict[str, Any] = {"model": model, "bucket": bucket, "touches_border": border, "n": len(group)}
    for metric in SUMMARY_METRICS:
        values = [float(r[metric]) for r in group]
        if metric == "psnr":
            values = [min(v, psnr_cap) for v in values]
        row[metric] = _mean(values)
    for metric in OPTIONAL_METRICS:
        values = [float(r[metric]) for r in group if r.get(metric) is not None]
        if values:
            row[metric] = _mean(values)
    return row


def summarise(records: Iterable[Mapping[str, Any]], *, psnr_cap: float = PSNR_CAP_DB) -> list[dict[str, Any]]:
    """Mean l1 / psnr / ssim / seconds and count per group, one dict per group.

    Each row is ``{"model", "bucket", "touches_border", "n", "l1", "psnr", "ssim", "seconds"}``
    plus each of :data:`OPTIONAL_METRICS` that some record of the group has (mean over those),
    where ``bucket`` is an int (0..5) or ``"all"`` and ``touches_border`` is True, False or
    None (None = both kinds pooled). Per model, in order of first appearance: for each bucket
    present (ascending) the no-border row, the border row (each only if it has samples) and the
    pooled row, then the overall row ``bucket="all"`` (which also counts records whose bucket is
    None). PSNR values are capped at ``psnr_cap`` before averaging.
    """
    records = list(records)
    for i, record in enumerate(records):
        _check_record(i, record)

    models = list(dict.fromkeys(str(r["model"]) for r in records))
    summary: list[dict[str, Any]] = []
    for model in models:
        mine = [r for r in records if r["model"] == model]
        buckets = sorted({r["bucket"] for r in mine if r["bucket"] is not None})
        for bucket in buckets:
            in_bucket = [r for r in mine if r["bucket"] == bucket]
            for border in (False, True):
                group = [r for r in in_bucket if bool(r["touches_border"]) is border]
                if group:
                    summary.append(_summary_row(model, bucket, border, group, psnr_cap))
            summary.append(_summary_row(model, bucket, None, in_bucket, psnr_cap))
        summary.append(_summary_row(model, "all", None, mine, psnr_cap))
    return summary


# ----------------------------------------------------------------------------- markdown


def _row_keys(summary: Sequence[Mapping[str, Any]]) -> list[tuple[int | str, bool | None]]:
    """Table rows in reading order: per bucket no border, border, both; then all."""
    present = {(row["bucket"], row["touches_border"]) for row in summary}
    buckets = sorted({b for b, _ in present if b != "all"})
    keys = [(b, border) for b in buckets for border in (False, True, None) if (b, border) in present]
    if ("all", None) in present:
        keys.append(("all", None))
    return keys


def _format(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else str(value)


def markdown_table(summary: Sequence[Mapping[str, Any]], metric: str = "psnr", *, caption: bool = True) -> str:
    """One Markdown table of ``metric`` from :func:`summarise` output, after a caption line.

    Rows are hole-ratio buckets (label from :func:`~unmasked.masks.stats.bucket_label`) split
    into border "no" / "yes" / "both", then "all"; columns are models; cells are means. The
    ``n`` column gives the sample count when all models agree, otherwise each cell carries its
    own ``(n=…)``. In rows with at least two models, the best value as displayed (lowest for
    ℓ1, time and identity distance, highest for PSNR and SSIM, closest to 100 for detail) is
    bold; ties are all bold. ``caption=False``
    leaves out the caption line (title, direction) for callers that write their own heading.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
    info = METRICS[metric]
    models = list(dict.fromkeys(str(row["model"]) for row in summary))
    cells = {(row["model"], row["bucket"], row["touches_border"]): row for row in summary}

    lines = [f"**{info.title}**, {info.direction}; best per row in bold.", ""] if caption else []
    lines += [
        "| Hole ratio | Border | n | " + " | ".join(models) + " |",
        "|---|---|--:|" + "--:|" * len(models),
    ]
    for bucket, border in _row_keys(summary):
        found = {m: cells[(m, bucket, border)] for m in models
                 if (m, bucket, border) in cells and metric in cells[(m, bucket, border)]}
        if not found:
            continue
        shown = {m: _format(float(row[metric]), info.decimals) for m, row in found.items()}
        ranked = {m: float(s) for m, s in shown.items() if math.isfinite(float(s))}
        best = None
        if len(ranked) >= 2:
            best = info.best(ranked.values())
        counts = {row["n"] for row in found.values()}
        same_n = len(counts) == 1
        row_cells = []
        for m in models:
            if m not in found:
                row_cells.append("–")
                continue
            text = shown[m] if same_n else f"{shown[m]} (n={found[m]['n']})"
            row_cells.append(f"**{text}**" if best is not None and ranked.get(m) == best else text)
        label = "all" if bucket == "all" else bucket_label(int(bucket))
        n_text = str(counts.pop()) if same_n else "varies"
        lines.append(f"| {label} | {_BORDER_TEXT[border]} | {n_text} | " + " | ".join(row_cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files


def write_records_csv(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One row per sample; columns :data:`RECORD_FIELDS`, then any extra keys (sorted)."""
    extras = sorted({k for r in records for k in r} - set(RECORD_FIELDS))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*RECORD_FIELDS, *extras])
        writer.writeheader()
        for record in records:
            writer.writerow({k: ("" if v is None else v) for k, v in record.items()})


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read ``records.csv`` back with the types of a record (extra columns stay strings)."""
    records = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            record: dict[str, Any] = dict(row)
            record["hole_ratio"] = float(row["hole_ratio"])
            record["bucket"] = int(row["bucket"]) if row["bucket"] != "" else None
            record["touches_border"] = row["touches_border"] == "True"
            for metric in ("l1", "psnr", "ssim", "seconds"):
                record[metric] = float(row[metric])
            for metric in OPTIONAL_METRICS:
                if metric in row:
                    record[metric] = float(row[metric]) if row[metric] not in ("", None) else None
            records.append(record)
    return records


def _present_optional(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    rows = list(rows)
    return [m for m in OPTIONAL_METRICS if any(m in row for row in rows)]


def _write_summary_csv(summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    optional = _present_optional(summary)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*SUMMARY_FIELDS, *optional], restval="")
        writer.writeheader()
        for row in summary:
            bucket = row["bucket"]
            border = row["touches_border"]
            writer.writerow(
                {
                    **{k: row[k] for k in ("model", "bucket", "n", *SUMMARY_METRICS, *optional) if k in row},
                    "bucket_label": "all" if bucket == "all" else bucket_label(int(bucket)),
                    "touches_border": "both" if border is None else border,
                }
            )


def _json_safe(value: Any) -> Any:
    """Strict JSON: non-finite floats become None, paths and other objects become strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _report_markdown(
    records: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]],
    title: str,
    meta: Mapping[str, Any],
    plot_name: str,
    realism: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    n_images = len({r["image"] for r in records})
    n_masks = len({r["mask"] for r in records})
    unbucketed = sum(1 for r in records if r["bucket"] is None)
    lines = [
        f"# {title}",
        "",
        f"- models: {', '.join(models) if models else '(none)'}",
        f"- images: {n_images}, masks: {n_masks}, samples (model × image × mask): {len(records)}",
        f'- samples outside the six buckets (counted only in "all"): {unbucketed}',
    ]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += [
        "",
        "Protocol: hole-ratio buckets and border split as in Liu et al., ECCV 2018 (Partial Convolutions). "
        "Metrics are computed on the whole composited image (known pixels from the ground truth). "
        f"ℓ1 % = 100 · mean |output − target| / 255. PSNR uses data range 255, each sample capped at "
        f"{PSNR_CAP_DB:g} dB (identical images) before averaging. SSIM (Wang et al., 2004) uses scikit-image "
        f"defaults: uniform {SSIM_WIN_SIZE}×{SSIM_WIN_SIZE} window, not the 11×11 Gaussian, mean over RGB. "
        'Border: "yes" = the hole touches the image edge, "both" = the two pooled. '
        "Best model per row in bold (ties all bold).",
    ]
    optional = _present_optional(summary)
    if "detail" in optional:
        lines += ["", "Detail % = mean Sobel gradient of the fill inside the hole (eroded 2 px) over the "
                  "original's, ×100: 100 is as much texture and structure as the photo had, a blurred fill "
                  "scores far below. PSNR and SSIM favour blur; read the two together."]
    if "identity" in optional:
        lines += ["", "Identity distance = Euclidean distance between dlib's 128-d descriptors of the filled "
                  "and the original face (both cut with the original's landmarks; 0 = unchanged, dlib calls "
                  "two photos the same person below 0.6). Measured on the faces dlib finds."]
    for metric, info in METRICS.items():
        if metric in OPTIONAL_METRICS and metric not in optional:
            continue
        lines += ["", f"## {info.title}, {info.direction}", "", markdown_table(summary, metric, caption=False)]
    if realism:
        lines += ["", "## Realism (classifier two-sample test), lower is better, 0.5 = indistinguishable", "",
                  realism_table(realism), "",
                  "A fresh small CNN is trained to tell the square around each hole in the fill from the same "
                  "square of the photo, on half of the identities (or images), and tested on the other half; "
                  "the halves swap (Lopez-Paz & Oquab, ICLR 2017). Accuracy over all patches with a 95 % "
                  "Wilson interval. Compare models within one run (same patches, same seed), not with other judges."]
    lines += ["", "## By bucket", "", f"![PSNR and ℓ1 by hole-ratio bucket]({plot_name})", ""]
    return "\n".join(lines)


def realism_table(realism: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown: one row per model of :func:`unmasked.evaluation.realism.c2st` results."""
    lines = ["| model | C2ST accuracy | 95 % interval | patches |", "|---|--:|--:|--:|"]
    best = min(r["accuracy"] for r in realism.values())
    for model, r in realism.items():
        acc = f"{r['accuracy']:.3f}"
        lines.append(f"| {model} | {'**' + acc + '**' if r['accuracy'] == best else acc} | "
                     f"{r['ci_low']:.2f}–{r['ci_high']:.2f} | {r['n']} |")
    buckets = sorted({b for r in realism.values() for b in r.get("by", {})})
    if buckets:
        lines += ["", "| model | " + " | ".join(bucket_label(b) for b in buckets) + " |",
                  "|---|" + "--:|" * len(buckets)]
        for model, r in realism.items():
            by = r.get("by", {})
            cells = [f"{by[b]['accuracy']:.2f}" if b in by else "–" for b in buckets]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    records: Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    title: str = "Inpainting evaluation",
    meta: Mapping[str, Any] | None = None,
    realism: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Path]:
    """Write the full report of one evaluation run into ``out_dir`` (created if needed).

    Files: ``records.csv`` (per sample; read back with :func:`read_records`), ``summary.json``
    (title, meta, counts and the :func:`summarise` rows), ``summary.csv``, ``report.md`` (title,
    counts, ``meta`` such as size / data path / seed, one table per metric) and
    ``psnr_by_bucket.png``; ``realism`` (model -> :func:`~unmasked.evaluation.realism.c2st` result)
    adds the realism table. Returns ``{"records_csv", "summary_json", "summary_csv",
    "report_md", "plot_png"}`` → path.
    """
    records = list(records)
    meta = dict(meta or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(records)
    paths = {
        "records_csv": out / "records.csv",
        "summary_json": out / "summary.json",
        "summary_csv": out / "summary.csv",
        "report_md": out / "report.md",
        "plot_png": out / "psnr_by_bucket.png",
    }

    write_records_csv(records, paths["records_csv"])
    _write_summary_csv(summary, paths["summary_csv"])
    document = {
        "title": title,
        "meta": meta,
        "psnr_cap_db": PSNR_CAP_DB,
        "n_records": len(records),
        "n_images": len({r["image"] for r in records}),
        "n_masks": len({r["mask"] for r in records}),
        "models": list(dict.fromkeys(str(r["model"]) for r in records)),
        "rows": summary,
        "realism": dict(realism or {}),
    }
    paths["summary_json"].write_text(
        json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    plot_by_bucket(summary, paths["plot_png"])
    paths["report_md"].write_text(
        _report_markdown(records, summary, title, meta, paths["plot_png"].name, realism), encoding="utf-8"
    )
    return paths
