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

import numpy as np
from PIL import Image
from skimage import data
from unmask_real_photos import crop_about  # this folder (on sys.path when run as a script): the same crop

from unmasked.api import load_model
from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.faces import detect_faces
from unmasked.masks.face_mask import put_face_mask
from unmasked.pipelines.unmask import unmask_array
from unmasked.training.data import REAL_HOLDOUT_EVERY

#: the astronaut's masks, one row each
KINDS = ("surgical", "n95", "cloth")


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
        inputs = [(load_image(p).rgb, None) for p in list_images(args.photos)[::REAL_HOLDOUT_EVERY]]
    rows = []
    for rgb, boxes in inputs:
        plain = unmask_array(rgb, model, boxes=boxes, mean_face=False)
        found = [f for f in plain.faces if f.mask_found]
        if not found:
            continue
        mean = unmask_array(rgb, model, boxes=boxes, mean_face=True)
        rows.append(np.concatenate([crop_about(x, found[0].box) for x in (rgb, plain.image, mean.image)], 1))
        if len(rows) == args.count:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out} ({len(rows)} faces)")


if __name__ == "__main__":
    main()
