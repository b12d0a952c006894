"""Figure for the by-eye check on real photos: the same faces restored by ``unmask`` with each model.

    python benchmarks/unmask_real_photos.py --photos ../shared/data/real_masked_photos \\
        --model pconv_unet_faces128 --model runs/pconv_faces-128-landmarks-guess/generator.safetensors \\
        --out runs/real20.png

    # the default pipeline against itself without two of its stages, on the second set (from the 15th)
    python benchmarks/unmask_real_photos.py --photos ../shared/data/real_masked_photos --offset 14 \\
        --model unmask+nomeanface+nograin --model unmask --out runs/real20_set2.png

A model may carry ``unmask`` options as ``eval-unmask``'s fillers do (``+nomeanface``, ``+nograin``,
``+meanface``, ...; ``unmask`` alone is the default face model). The photos are every
``--every``-th of the sorted folder from the ``--offset``-th, kept while the default pipeline finds
a face and a worn mask on them, up to ``--count`` (with the defaults, the selection rule of the
README's "20 real photos"; training's ``real_worn`` holes never come from these photos).
Each row is one photo's first restored face, cropped about its box: the photo | each model's
restored photo, in ``--model`` order. Two images are written (``out`` with ``_a`` and ``_b`` added),
half of the rows each, so each stays readable. Models are presets or checkpoint paths.

**Blind** (``--blind``, two models): each row shows the two restorations in a random order (seeded
by ``--seed``), and the order is written to ``out``'s ``_key.json``, not shown. Judge each row
before looking at the key, as a string of one letter a row, the better side clearly (``L``/``R``)
or slightly (``l``/``r``), or ``=`` for alike; then count by model::

    python benchmarks/unmask_real_photos.py --photos ../shared/data/real_masked_photos --offset 2 \
        --model unmask --model unmask+nomeanchroma --blind --out runs/blind.png
    python benchmarks/unmask_real_photos.py --tally runs/blind_key.json --judged "rr=rrr=r==r=l==rr=l="

The by-eye rules of the README's session-53 studies were judged this way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unmasked.api import load_model
from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.evaluation.unmask_eval import unmask_options
from unmasked.pipelines.unmask import unmask_array
from unmasked.training.data import REAL_HOLDOUT_EVERY

CELL = 224


def crop_about(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.35) -> np.ndarray:
    """A square about ``box`` grown by ``margin`` of its side, clipped to the photo, at CELL px."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w // 2, y + h // 2
    H, W = rgb.shape[:2]
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    patch = rgb[y0:min(H, y0 + side), x0:min(W, x0 + side)]
    return cv2.resize(patch, (CELL, CELL), interpolation=cv2.INTER_AREA if patch.shape[0] > CELL else cv2.INTER_CUBIC)


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"name+option+option"`` -> (the model, :func:`unmask_array` keyword arguments); ``unmask`` is
    the default face model. Raises ``ValueError`` for an unknown option (:func:`unmask_options`)."""
    return unmask_options(spec)


def tally(key: dict, judged: str) -> dict[str, dict[str, int]]:
    """Per model of a blind figure's ``key``: on how many rows it was judged clearly and slightly
    better, from ``judged`` (one of ``L l = r R`` a row, in the figure's order); and ``alike``."""
    rows = key["rows"]
    if len(judged) != len(rows) or set(judged) - set("LlRr="):
        raise ValueError(f"judge each of the {len(rows)} rows with one of L l = r R, got {judged!r}")
    counts = {m: {"clearly": 0, "slightly": 0} for m in key["models"]}
    counts["alike"] = {"rows": 0}
    for row, mark in zip(rows, judged, strict=True):
        if mark == "=":
            counts["alike"]["rows"] += 1
            continue
        better = row["order"][0 if mark in "Ll" else 1]
        counts[better]["clearly" if mark.isupper() else "slightly"] += 1
    return counts


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path)
    ap.add_argument("--model", action="append",
                    help="a preset or checkpoint path ('unmask': the default), with '+option's; repeat")
    ap.add_argument("--blind", action="store_true", help="two models, in a random order a row; the order to _key.json")
    ap.add_argument("--seed", type=int, default=0, help="the blind order's seed")
    ap.add_argument("--tally", type=Path, help="a blind figure's _key.json: count --judged by model, and stop")
    ap.add_argument("--judged", help="with --tally: one of L l = r R a row (the better side, clearly or slightly)")
    ap.add_argument("--offset", type=int, default=0, help="the first photo's index in the sorted folder")
    ap.add_argument("--every", type=int, default=REAL_HOLDOUT_EVERY,
                    help="every n-th photo (the default: the photos no real_worn training hole comes from)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.tally is not None:
        if args.judged is None:
            ap.error("--tally needs --judged")
        try:
            print(json.dumps(tally(json.loads(args.tally.read_text()), args.judged), indent=1))
        except (OSError, ValueError, KeyError) as e:
            ap.error(f"cannot tally {args.tally}: {e}")
        return
    if args.photos is None or not args.model or args.out is None:
        ap.error("--photos, --model and --out are needed (or --tally)")
    if args.blind and len(args.model) != 2:
        ap.error("--blind compares exactly two models")
    rng = np.random.default_rng(args.seed)
    key = {"models": list(args.model), "rows": []}
    specs = [parse_spec(m) for m in args.model]
    models = [(load_model(name), kwargs) for name, kwargs in specs]
    rows = []
    for path in list_images(args.photos)[args.offset :: args.every]:
        rgb = load_image(path).rgb
        results = [unmask_array(rgb, m, **kwargs) for m, kwargs in models]
        restored = [f for f in results[0].faces if f.mask_found]
        if not restored:
            continue
        box = restored[0].box
        cells = [crop_about(r.image, box) for r in results]
        if args.blind:
            order = [1, 0] if rng.integers(2) else [0, 1]
            cells = [cells[i] for i in order]
            key["rows"].append({"photo": path.name, "order": [args.model[i] for i in order]})
        rows.append(np.concatenate([crop_about(rgb, box)] + cells, 1))
        print(f"{len(rows):2d} {path.name}", flush=True)
        if len(rows) == args.count:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    half = (len(rows) + 1) // 2
    for suffix, part in (("_a", rows[:half]), ("_b", rows[half:])):
        if part:
            out = args.out.with_name(args.out.stem + suffix + args.out.suffix)
            Image.fromarray(np.concatenate(part, 0)).save(out)
            print(f"wrote {out}")
    if args.blind:
        out = args.out.with_name(args.out.stem + "_key.json")
        out.write_text(json.dumps(key, indent=1))
        print(f"wrote {out} (the order of each row: judge the figure before reading it)")


if __name__ == "__main__":
    main()
