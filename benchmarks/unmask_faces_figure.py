"""Figure: 12 held-out faces with synthetic worn masks, masked | restored by ``unmask`` | original, at 256².

    python benchmarks/unmask_faces_figure.py --images ../shared/data/faces/celeba_wild256 --out runs/unmask_faces256.jpg

The faces are the first 12 of ``unmasked eval-unmask``'s held-out set (same seed, same masks); the
restored faces come from the whole pipeline (face and mask found by it), with ``--model`` as the
face model (default: unmask's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from unmasked.api import DEFAULT_UNMASK_PRESET, load_model
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.unmask_eval import masked_faces
from unmasked.pipelines.unmask import unmask_array


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, required=True, help="<identity>/<image> folder of aligned faces")
    ap.add_argument("--model", default=DEFAULT_UNMASK_PRESET)
    ap.add_argument("--limit", type=int, default=100, help="the evaluation's face count (picks the same faces)")
    ap.add_argument("--seamless", action="store_true", help="gradient-domain paste-back")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    names, pixels = load_eval_images(args.images, 256, split="val", limit=args.limit)
    faces = masked_faces(names, pixels)[:: max(1, args.limit // 12)][:12]
    model = load_model(args.model)
    restored = [unmask_array(f.masked, model, seamless=args.seamless).image for f in faces]
    blocks = []
    for half in (slice(0, 6), slice(6, 12)):
        blocks += [np.concatenate([f.masked for f in faces[half]], 1), np.concatenate(restored[half], 1),
                   np.concatenate([f.original for f in faces[half]], 1)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(blocks, 0)).save(args.out, quality=88)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
