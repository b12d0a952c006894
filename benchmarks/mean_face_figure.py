"""Figure of ``unmask --mean-face``: the masked photo | ``unmask`` | ``unmask --mean-face``, one row a face.

    python benchmarks/mean_face_figure.py --out docs/mean_face.png          # the astronaut (public domain)
    python benchmarks/mean_face_figure.py --photos ../shared/data/real_masked_photos --out runs/mean_face_real.png

Without ``--photos`` the rows are scikit-image's astronaut (public domain) wearing synthetic masks
of each built-in kind; that figure may be published. With ``--photos`` they are the README's 20
real photos (every 29th of the folder, the first face with a worn mask found; research-only
images: keep that figure out of the repository).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

from unmasked.api import load_model
from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.faces import detect_faces
from unmasked.masks.face_mask import put_face_mask
from unmasked.pipelines.unmask import unmask_array

CELL = 256
#: the astronaut's masks, one row each
KINDS = ("surgical", "n95", "cloth")


def crop(rgb: np.ndarray, box, margin: float = 0.25) -> np.ndarray:
    x, y, w, h = box
    side = int(max(w, h) * (1 + 2 * margin))
    cx, cy = x + w // 2, y + h // 2
    H, W = rgb.shape[:2]
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    patch = rgb[y0:min(H, y0 + side), x0:min(W, x0 + side)]
    return cv2.resize(patch, (CELL, CELL), interpolation=cv2.INTER_AREA if patch.shape[0] > CELL else cv2.INTER_CUBIC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, help="real photos instead of the astronaut (research-only: do not publish)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model = load_model("pconv_unet_faces128_landmarks")
    if args.photos is None:
        rgb = data.astronaut()
        face = detect_faces(rgb)[0]
        inputs = [(put_face_mask(rgb, face, np.random.default_rng(0), kind=k)[0], None) for k in KINDS]
    else:
        inputs = [(load_image(p).rgb, None) for p in list_images(args.photos)[::29]]
    rows = []
    for rgb, boxes in inputs:
        plain = unmask_array(rgb, model, boxes=boxes)
        found = [f for f in plain.faces if f.mask_found]
        if not found:
            continue
        mean = unmask_array(rgb, model, boxes=boxes, mean_face=True)
        rows.append(np.concatenate([crop(x, found[0].box) for x in (rgb, plain.image, mean.image)], 1))
        if len(rows) == args.count:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out} ({len(rows)} faces)")


if __name__ == "__main__":
    main()
