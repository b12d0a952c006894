"""Ear loops: how many of a worn mask's straps ``unmask`` leaves, and what removing them costs.

    python benchmarks/ear_loops.py --images ../shared/data/faces/celeba_wild256 --limit 100

The held-out faces of ``unmasked eval-unmask`` (same seed, same synthetic worn masks) get synthetic
straps (:func:`unmasked.faces.ear_loops.draw_ear_loops`: two a side, from the mask's side to the
ear, 1-3 px wide at 256², white or the fabric's colour). ``unmask`` runs on each face with and
without ``ear_loops``, once with the straps and once without them (where every change the loop
finder makes is a false alarm). Reported per setting: the share of strap pixels left (those the
straps moved more than 10 CIELAB units from the face, left within 10 of the strapped input), PSNR over the face and over the straps' band
(the straps grown by 3 px), and on the faces without straps the share of pixels the loop finder
changed and the PSNR. ``--sheet`` draws the faces with straps: masked | without | with removal.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unmasked.api import DEFAULT_UNMASK_PRESET, load_model
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.unmask_eval import masked_faces
from unmasked.faces.ear_loops import draw_ear_loops
from unmasked.metrics import PSNR_CAP_DB
from unmasked.metrics import psnr as _psnr
from unmasked.pipelines.unmask import unmask_array

LEFT_DELTA_E = 10.0


def psnr(output: np.ndarray, target: np.ndarray, where: np.ndarray | None = None) -> float:
    """:func:`unmasked.metrics.psnr`, capped at :data:`~unmasked.metrics.PSNR_CAP_DB` for averaging."""
    return min(_psnr(output, target, where), PSNR_CAP_DB)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lab = [cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB) for x in (a, b)]
    return np.linalg.norm(lab[0] - lab[1], axis=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, required=True, help="<identity>/<image> folder of aligned faces")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", type=Path, help="also draw the faces with straps here (a PNG)")
    args = ap.parse_args()
    names, pixels = load_eval_images(args.images, 256, split="val", limit=args.limit)
    faces = [f for f in masked_faces(names, pixels, args.seed) if f.landmarks is not None]
    model = load_model(DEFAULT_UNMASK_PRESET)
    totals = {k: [] for k in ("left_off", "left_on", "face_off", "face_on", "band_off", "band_on",
                              "clean_changed", "clean_off", "clean_on")}
    seconds = {True: 0.0, False: 0.0}
    rows = []
    for i, face in enumerate(faces):
        rng = np.random.default_rng([args.seed, i, 7])
        strapped, loops = draw_ear_loops(face.masked, face.hole, face.landmarks, rng)
        band = cv2.dilate(loops.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        results = {}
        for on in (False, True):
            start = time.perf_counter()
            results[on] = unmask_array(strapped, model, ear_loops=on).image
            seconds[on] += time.perf_counter() - start
            tag = "on" if on else "off"
            if loops.any():
                drawn = loops & (delta_e(strapped, face.original) > LEFT_DELTA_E)
                left = (delta_e(results[on], strapped) < LEFT_DELTA_E)[drawn]
                totals[f"left_{tag}"].append((int(left.sum()), int(drawn.sum())))
                totals[f"band_{tag}"].append(psnr(results[on], face.original, band))
            totals[f"face_{tag}"].append(psnr(results[on], face.original))
        clean = {on: unmask_array(face.masked, model, ear_loops=on).image for on in (False, True)}
        totals["clean_changed"].append(float(np.any(clean[True] != clean[False], axis=2).mean()))
        totals["clean_off"].append(psnr(clean[False], face.original))
        totals["clean_on"].append(psnr(clean[True], face.original))
        if args.sheet is not None and len(rows) < 12 and loops.any():
            rows.append(np.concatenate([strapped, results[False], results[True], face.original], 1))
    n = len(faces)
    for tag, name in (("off", "without ear_loops"), ("on", "with ear_loops")):
        left = np.array(totals[f"left_{tag}"])
        print(f"{name:>18}: strap pixels left {100 * left[:, 0].sum() / left[:, 1].sum():5.1f} %  "
              f"PSNR face {np.mean(totals[f'face_{tag}']):.2f} dB  band {np.mean(totals[f'band_{tag}']):.2f} dB  "
              f"faces without straps: PSNR {np.mean(totals[f'clean_{tag}']):.3f} dB")
    changed = np.array(totals["clean_changed"])
    print(f"faces without straps: the loop finder changed {100 * changed.mean():.3f} % of the pixels "
          f"(on {int((changed > 0).sum())} of {n} faces)")
    print(f"time, with / without: {seconds[True] / seconds[False]:.2f}x ({n} faces)")
    if rows:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(rows, 0)).save(args.sheet)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
