"""How far FaceMesh's 68 points move when the face wears a mask, and the offsets that undo it.

A landmark-guided face model (``pconv_unet`` with ``landmark_guide``) is trained on the points of
unmasked faces, but ``unmask`` can only give it FaceMesh's guess under the worn mask. For each
face of ``--images`` (FFHQ-aligned ``<identity>/<image>`` folders), a synthetic worn mask is put
on (MaskTheFace method, random template, colour and print, as ``unmasked eval-unmask`` does),
FaceMesh runs on the masked and on the unmasked photo, and the displacement of each point is
measured in the masked face's aligned 128² crop (the crop ``unmask`` fills).

``--fit`` (training identities) prints the per-point median displacement, the table kept as
:data:`unmasked.data.landmark_guide.UNDER_MASK_OFFSET`; ``--check`` (held-out identities)
reports the median error per face part before and after subtracting the shipped table.

    python benchmarks/landmarks_under_mask.py --images ../shared/data/faces/celeba_wild256 --fit --limit 400
    python benchmarks/landmarks_under_mask.py --images ../shared/data/faces/celeba_wild256 --check --limit 100
"""

from __future__ import annotations

import argparse

import numpy as np

from unmasked.data.landmark_guide import UNDER_MASK_OFFSET
from unmasked.evaluation.run import load_eval_images
from unmasked.evaluation.unmask_eval import masked_faces, under_mask_displacements

PARTS = {"eyes": np.r_[36:48], "brows": np.r_[17:27], "nose": np.r_[31:36], "mouth": np.r_[48:68], "jaw": np.r_[0:17]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--fit", action="store_true", help="training identities: print the median table")
    mode.add_argument("--check", action="store_true", help="held-out identities: error before / after the table")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    names, pixels = load_eval_images(args.images, 256, split="train" if args.fit else "val", limit=args.limit)
    d = under_mask_displacements(masked_faces(names, pixels, seed=args.seed))
    print(f"{len(d)} faces found both masked and unmasked")
    if args.fit:
        np.set_printoptions(precision=1, suppress=True, floatmode="fixed", linewidth=100)
        print("UNDER_MASK_OFFSET (x, y px at 128):")
        print(repr(np.round(np.median(d, axis=0), 1)))  # the table keeps the y column (x is within 0.6 px)
        return
    print("| part | median error before, px at 128 | after subtracting the table |")
    print("|---|--:|--:|")
    for name, idx in PARTS.items():
        before = np.linalg.norm(d[:, idx].mean(axis=1), axis=1)
        after = np.linalg.norm((d - UNDER_MASK_OFFSET)[:, idx].mean(axis=1), axis=1)
        print(f"| {name} | {np.median(before):.2f} | {np.median(after):.2f} |")


if __name__ == "__main__":
    main()
