"""How often a face model's fill runs in horizontal bands, on real photos and on held-out faces.

    python benchmarks/band_share.py --photos ../shared/data/real_masked_photos \
        --images ../shared/data/faces/celeba_wild256 --model pconv_unet_faces128_landmarks --model <snapshot>

Each model fills every face through ``unmask`` (its default options, or those a model carries as
``eval-unmask``'s fillers do, ``unmask+noeyeskin``; the second look off, so only faces the detector
finds count; with ``+nomeanface`` no ratio is read, since it is measured only where the mean face
may be used), and the fill's horizontal band ratio, the measure behind
``--mean-face auto`` (:func:`unmasked.faces.mean_face.horizontal_band_ratio`: long horizontal edges
over long upright ones inside the hole, lips and nostrils left out), is read before the mean face
is applied. Reported per model: faces scored, the median ratio and the share at or above
:data:`~unmasked.faces.mean_face.BAND_THRESHOLD` (1.3), which by eye catches most banded fills
(README, "The face's structure from a mean face"). Real photos: the held-out ones of the by-eye
checks (every 29th, from the 1st, 15th and 8th). Held-out faces: ``eval-unmask``'s (same seed and
masks). No ground truth is needed for the first; the second has it, but only the ratio is read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unmasked.api import load_model
from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.unmask_eval import masked_faces, unmask_options
from unmasked.faces.mean_face import BAND_THRESHOLD
from unmasked.pipelines.unmask import unmask_array
from unmasked.training.data import REAL_HOLDOUT_EVERY

#: the by-eye checks' sets of real photos: every 29th from these offsets
OFFSETS = (0, 14, 7)


def band_ratios(photos, model, options: dict | None = None) -> np.ndarray:
    """The band ratio of every restored face's fill (faces whose hole leaves too little face are
    skipped); ``options``: more :func:`unmask_array` keyword arguments."""
    out = []
    for rgb in photos:
        result = unmask_array(rgb, model, **{**(options or {}), "second_look": False})
        out += [f.band_ratio for f in result.faces
                if f.mask_found and f.band_ratio is not None and np.isfinite(f.band_ratio)]
    return np.asarray(out, np.float64)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, help="folder of real photos of people in masks")
    ap.add_argument("--images", type=Path, help="<identity>/<image> folder of aligned faces (held-out identities)")
    ap.add_argument("--limit", type=int, default=100, help="held-out faces")
    ap.add_argument("--model", action="append", required=True,
                    help="face model (preset or checkpoint; 'unmask': unmask's default), with eval-unmask's "
                         "'+option's (unmask+noeyeskin); repeatable")
    args = ap.parse_args(argv)
    if args.photos is None and args.images is None:
        ap.error("give --photos, --images or both")
    models = []
    for spec in args.model:  # all loaded before any face is: a wrong name fails at once
        try:
            name, options = unmask_options(spec)
            models.append((spec, load_model(name), options))
        except (ValueError, OSError) as e:  # an unknown preset, option or file: one line, no traceback
            ap.error(f"--model {spec}: {e}")
    sets = []
    if args.photos is not None:
        paths = list_images(args.photos)
        held = sorted({p for off in OFFSETS for p in paths[off::REAL_HOLDOUT_EVERY]})
        sets.append(("real photos", lambda: (load_image(p).rgb for p in held)))
    if args.images is not None:
        names, pixels = load_eval_images(args.images, 256, split="val", limit=args.limit)
        faces = masked_faces(names, pixels)
        sets.append(("held-out faces", lambda: (f.masked for f in faces)))
    print(f"| model | set | faces | median band ratio | share >= {BAND_THRESHOLD:g} |\n|---|---|--:|--:|--:|")
    for name, model, options in models:
        for label, photos in sets:
            r = band_ratios(photos(), model, options)
            print(f"| {name} | {label} | {len(r)} | {np.median(r):.2f} | {100 * np.mean(r >= BAND_THRESHOLD):.1f} % |",
                  flush=True)


if __name__ == "__main__":
    main()
