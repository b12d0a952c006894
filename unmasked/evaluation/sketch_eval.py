"""How well a sketch model follows the lines it is given (DeepFill v2's user-guided mode).

Yu et al. (ICCV 2019, Sec. 3.4 and Fig. 8) show user-guided fills by eye. Here it is
measured. Each case is a held-out image with a hole and, as the sketch, the image's own edges
inside the hole (:func:`unmasked.data.sketch.edge_sketch`: the lines a careful user would
draw). The same model fills it three times through :func:`unmasked.pipelines.fill.fill_array`:

* **no sketch**;
* **true edges**: the sketch;
* **rough sketch**: those edges with strokes dropped, gaps cut and a smooth jitter of about
  1.5 px (:func:`unmasked.data.sketch.perturb_sketch`), like a hand-drawn sketch.

Each fill is scored by the symmetric Chamfer distance (px) between its own Canny edges in the
hole (3 px in from its edge, where the seam makes edges of its own) and the true edges (lower = the structure is where it should be), and by PSNR / SSIM over
the whole image. The effect of the sketch is the per-image paired difference, reported with a
95 % bootstrap interval over images. A sketch-less model (today's) can be scored on the same
cases to check that the sketch model without a sketch matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from unmasked.data.sketch import chamfer_distance, edge_map, edge_sketch, perturb_sketch
from unmasked.metrics import bootstrap_mean_ci, psnr, ssim
from unmasked.models.base import InpaintModel
from unmasked.pipelines.fill import fill_array

CONDITIONS = ("no sketch", "true edges", "rough sketch")


@dataclass
class SketchCase:
    name: str
    image: np.ndarray  # uint8 (S, S, 3)
    hole: np.ndarray  # bool (S, S)
    sketch: np.ndarray  # bool (S, S): the image's edges in the hole
    rough: np.ndarray  # bool (S, S): a hand-drawn-like version of it


def sketch_cases(names: Sequence[str], images: Sequence[np.ndarray], holes: Sequence[np.ndarray],
                 seed: int = 0) -> list[SketchCase]:
    """One case per image; the rough sketch is drawn with a generator seeded by ``(seed, index)``."""
    cases = []
    for i, (name, image, hole) in enumerate(zip(names, images, holes, strict=True)):
        true = edge_sketch(image, hole)
        rough = perturb_sketch(true, np.random.default_rng([seed, i]), drop=0.3, breaks=0.05, jitter=1.5) & hole
        cases.append(SketchCase(name, image, hole.astype(bool), true, rough))
    return cases


def _fill(model: InpaintModel, case: SketchCase, sketch: np.ndarray | None) -> np.ndarray:
    return fill_array(case.image, case.hole, model, sketch=sketch).image


#: the Chamfer distance is counted this many px inside the hole's edge: at the edge itself,
#: the seam between photo and fill makes edges that no sketch is about
SEAM_BAND = 3


def inner_region(hole: np.ndarray, band: int = SEAM_BAND) -> np.ndarray:
    """``hole`` eroded by ``band`` px (a square structuring element)."""
    if band <= 0:
        return hole.astype(bool)
    return cv2.erode(hole.astype(np.uint8), np.ones((2 * band + 1, 2 * band + 1), np.uint8)) > 0


def score_fill(fill: np.ndarray, case: SketchCase) -> dict[str, float]:
    """Chamfer distance (px) of the fill's edges to the true edges inside the hole (away from
    its seam, :data:`SEAM_BAND`), PSNR and SSIM over the image."""
    return {"chamfer": chamfer_distance(edge_map(fill), case.sketch, inner_region(case.hole)),
            "psnr": psnr(fill, case.image), "ssim": ssim(fill, case.image)}


def evaluate_sketch(model: InpaintModel, cases: Sequence[SketchCase], *, baseline: InpaintModel | None = None,
                    seed: int = 0) -> dict:
    """Scores of ``model`` under :data:`CONDITIONS` (and of ``baseline`` without a sketch), with
    paired intervals. Returns ``{"rows": [...], "effects": [...], "fills": {condition: [uint8 ...]}}``."""
    if not getattr(model, "uses_sketch", False):
        raise ValueError("evaluate_sketch needs a model with a sketch channel")
    runs = {"no sketch": None, "true edges": "sketch", "rough sketch": "rough"}
    fills: dict[str, list[np.ndarray]] = {c: [_fill(model, case, getattr(case, a) if a else None) for case in cases]
                                          for c, a in runs.items()}
    if baseline is not None:
        fills["sketch-less model"] = [_fill(baseline, case, None) for case in cases]
    scores = {c: [score_fill(f, case) for f, case in zip(fs, cases, strict=True)] for c, fs in fills.items()}
    # Chamfer needs edges in the hole on both sides; images without any are left out of it
    rows = []
    for c, per in scores.items():
        cham = np.array([s["chamfer"] for s in per])
        rows.append({"condition": c, "n": len(per), "chamfer_n": int(np.isfinite(cham).sum()),
                     "chamfer": float(np.nanmean(cham)) if np.isfinite(cham).any() else float("nan"),
                     "psnr": float(np.mean([s["psnr"] for s in per])),
                     "ssim": float(np.mean([s["ssim"] for s in per]))})
    effects = []
    pairs = [("true edges", "no sketch"), ("rough sketch", "no sketch")]
    if baseline is not None:
        pairs.append(("no sketch", "sketch-less model"))
    for a, b in pairs:
        for metric in ("chamfer", "psnr", "ssim"):
            diff = np.array([sa[metric] - sb[metric] for sa, sb in zip(scores[a], scores[b], strict=True)])
            diff = diff[np.isfinite(diff)]
            lo, hi = bootstrap_mean_ci(diff, seed=seed) if len(diff) else (float("nan"), float("nan"))
            effects.append({"a": a, "b": b, "metric": metric, "n": len(diff), "mean": float(diff.mean()) if len(diff)
                            else float("nan"), "ci95": [lo, hi]})
    return {"rows": rows, "effects": effects, "fills": fills}


def format_result(result: dict, title: str) -> str:
    """Markdown: one table of the conditions, then the paired differences."""
    lines = [f"**{title}**", "", "| condition | Chamfer px ↓ (n) | PSNR dB ↑ | SSIM ↑ |", "|---|--:|--:|--:|"]
    for r in result["rows"]:
        lines.append(f"| {r['condition']} | {r['chamfer']:.2f} ({r['chamfer_n']}) | {r['psnr']:.2f} | {r['ssim']:.3f} |")
    lines += ["", "| paired difference | metric | mean | 95 % interval | n |", "|---|---|--:|--:|--:|"]
    for e in result["effects"]:
        lo, hi = e["ci95"]
        lines.append(f"| {e['a']} − {e['b']} | {e['metric']} | {e['mean']:+.3f} | {lo:+.3f} .. {hi:+.3f} | {e['n']} |")
    return "\n".join(lines)
