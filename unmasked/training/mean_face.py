"""Build the mean face that ``unmask --mean-face`` uses (:mod:`unmasked.faces.mean_face`).

    python -m unmasked.training.mean_face --images ../shared/data/faces/celeba_wild256

Averages the closed-mouth faces of the folder's training identities (the identity split that
``eval-unmask`` holds out 20 % of, so no held-out person enters it) and writes the two files that
ship: the plain average (``unmasked/faces/models/mean_face256.safetensors``) and its
texture-enhanced version (``mean_face256_texture.safetensors``); ~35 s on the shared 2-core CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unmasked.data.datasets import IdentityFolderDataset
from unmasked.data.mask_seg import aligned_landmarks
from unmasked.faces.mean_face import (
    MAX_MOUTH_OPEN,
    MEAN_FACE_FILE,
    MEAN_FACE_SIZE,
    TEXTURE_BANDS,
    TEXTURE_CAP,
    TEXTURE_INSET,
    TEXTURED_MEAN_FACE_FILE,
    build_mean_face,
    save_mean_face,
)


def main(argv: list[str] | None = None) -> None:
    """Build the mean face of an aligned identity folder's training identities (the held-out ones,
    which ``eval-unmask`` scores, never enter it) and its texture-enhanced version, and write them;
    prints what it averaged."""
    ap = argparse.ArgumentParser(prog="python -m unmasked.training.mean_face", description=main.__doc__.split(";")[0])
    ap.add_argument("--images", type=Path, required=True, help="<identity>/<image> folder of FFHQ-aligned faces")
    ap.add_argument("--out", type=Path, default=MEAN_FACE_FILE)
    ap.add_argument("--texture-out", type=Path, default=TEXTURED_MEAN_FACE_FILE)
    ap.add_argument("--cache", type=Path, default=Path("~/.cache/unmasked/landmarks").expanduser(),
                    help="where the faces' landmarks are cached (shared with training)")
    args = ap.parse_args(argv)
    # the identity split eval-unmask holds its faces out by (20 % of the identities, seed 0)
    ds = IdentityFolderDataset(args.images, MEAN_FACE_SIZE, split="train", val_fraction=0.2, crop="center")
    names = [Path(p).relative_to(args.images).as_posix() for p in ds.paths]
    pixels = np.stack([ds.pixels(i) for i in range(len(ds))])
    found = aligned_landmarks(args.images, args.cache / f"{args.images.resolve().name}_lm256_fixedbox.npz",
                              size=MEAN_FACE_SIZE)
    lm = np.stack([found.get(n, np.full((68, 2), np.nan)) for n in names]).astype(np.float64)
    source = (f"{args.images.resolve().name}: training identities (identity split, 20 % held out), "
              f"mouths open <= {MAX_MOUTH_OPEN}")
    for texture, out in ((False, args.out), (True, args.texture_out)):
        mean = build_mean_face(pixels, lm, texture=texture)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_mean_face(mean, out, source=source + (f"; texture-enhanced (cap {TEXTURE_CAP}, inset {TEXTURE_INSET} px, {TEXTURE_BANDS} finest bands)"
                                                    if texture else ""))
        print(f"averaged {mean.count} of {len(names)} training faces (closed mouths"
              f"{', texture-enhanced' if texture else ''}) -> {out}")


if __name__ == "__main__":
    main()
