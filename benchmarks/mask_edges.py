"""How sharp a worn mask's edge is, on the benchmark's synthetic masks and on real photos.

    python benchmarks/mask_edges.py --images ../shared/data/faces/celeba_wild256 \
        --photos ../shared/data/real_masked_photos --limit 60

Why it matters: ``unmask`` repaints the segmenter's region dilated by 3 % of the crop (4 px at
128²). A region that hugs the fabric's edge instead scores about 0.5 dB higher on the held-out
faces with synthetic masks, and leaves fabric lines on real photos (README, "Two more ways to
repaint less"). This measures why. Each face is aligned at 128² as ``unmask`` aligns it, the
segmenter's worn mask (probability > 0.5) is scaled to the face aligned at 256², and a guided
filter (He, Sun & Tang, ECCV 2010; ``cv2.ximgproc.guidedFilter``, radius 4 px, eps 1e-3 of the
squared range) snaps it to the photo's own edges. The edge's width is the number of pixels within
6 px of the mask's outline where the snapped mask lies strictly between 0.2 and 0.8, per pixel of
that outline: 0.3 for a drawn step, 1.2 / 2.0 / 2.4 for the same step blurred by a Gaussian of 1 / 2 / 3 px,
more for a low-contrast edge.

Faces: the held-out faces of ``unmasked eval-unmask`` with their synthetic masks (same seed), and
the held-out real photos (every 29th, from the first) on which the segmenter finds a worn mask.
Reported: the width's 5th, 25th, 50th, 75th and 95th percentiles for each set, and the share of
real faces whose edge is as sharp as the synthetic median. ``--edge-blur 3.5`` adds a row for the
synthetic masks with their edges softened as ``unmasked eval-unmask --edge-blur 3.5`` softens
them (:func:`unmasked.evaluation.unmask_eval.soften_mask_edge`): the blur that matches the real
photos' median.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.unmask_eval import masked_faces
from unmasked.faces import align_face, detect_faces
from unmasked.hub import DEFAULT_SEGMENTER, load_segmenter
from unmasked.pipelines.unmask import MAX_MASK_AREA, MIN_MASK_AREA, segment_aligned
from unmasked.training.data import REAL_HOLDOUT_EVERY

#: the guided filter's radius (px at 256²) and regulariser (a fraction of 255²)
RADIUS, EPS = 4, 1e-3
#: how far from the mask's outline the transition is counted (px at 256²)
BAND = 6


def edge_width(image: np.ndarray, mask: np.ndarray) -> float:
    """Pixels of transition per pixel of outline: ``mask`` (bool (s, s)) scaled to ``image``
    (uint8 (S, S, 3)) and snapped to its edges by a guided filter (see the module docstring)."""
    side = image.shape[0]
    p = cv2.resize(mask.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    snapped = cv2.ximgproc.guidedFilter(image, p, RADIUS, EPS * 255 * 255)
    inside = (p > 0.5).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(inside, kernel, iterations=BAND) > cv2.erode(inside, kernel, iterations=BAND)
    outline = (cv2.dilate(inside, kernel) > inside).sum()
    return float(((snapped > 0.2) & (snapped < 0.8) & band).sum() / max(1, outline))


def widths(photos, segmenter) -> list[float]:
    """The edge width of the first face with a worn mask on each photo (uint8 RGB arrays)."""
    out = []
    for rgb in photos:
        for face in detect_faces(rgb):
            small = align_face(rgb, face, 128)
            found = segment_aligned(segmenter, small.image) > 0.5
            if MIN_MASK_AREA <= found.mean() <= MAX_MASK_AREA:
                out.append(edge_width(align_face(rgb, face, 256).image, found))
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, required=True, help="<identity>/<image> folder of aligned faces")
    ap.add_argument("--photos", type=Path, required=True, help="folder of real photos of people in masks")
    ap.add_argument("--limit", type=int, default=60, help="faces of each set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edge-blur", type=float, action="append", default=[],
                    help="also the synthetic masks with edges softened by this Gaussian (px at 256²); repeatable")
    args = ap.parse_args()
    segmenter = load_segmenter(DEFAULT_SEGMENTER)
    names, pixels = load_eval_images(args.images, 256, split="val", limit=args.limit)
    synthetic = widths((f.masked for f in masked_faces(names, pixels, seed=args.seed)), segmenter)
    held = list_images(args.photos)[::REAL_HOLDOUT_EVERY]
    real = widths((load_image(p).rgb for p in held), segmenter)[: args.limit]
    rows = [("synthetic masks", synthetic), ("real photos", real)]
    for sigma in args.edge_blur:
        soft = masked_faces(names, pixels, seed=args.seed, edge_blur=sigma)
        rows.append((f"synthetic, edge blurred {sigma:g} px", widths((f.masked for f in soft), segmenter)))
    print("edge width, px of transition per px of outline (percentiles 5 / 25 / 50 / 75 / 95)")
    for name, w in rows:
        print(f"{name:30s} {len(w):4d} faces  " + " / ".join(f"{v:.2f}" for v in np.percentile(w, [5, 25, 50, 75, 95])))
    sharp = np.mean(np.asarray(real) <= np.median(synthetic))
    print(f"real faces whose edge is as sharp as the synthetic median: {100 * sharp:.1f} %")


if __name__ == "__main__":
    main()
