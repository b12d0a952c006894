"""Object removal on public-domain photos from scikit-image: the README's before/after.

Three objects a user would remove, each with a hand-drawn selection (polygons and ellipses,
dilated a few pixels as a selection brush would be): a launch tower against the evening sky in
``rocket``, the spoon on the saucer in ``coffee``, the shuttle model behind the astronaut.
Each row is photo (hole in white) | every ``--model`` (default: telea, patchmatch and the
default ``auto``), filled through :class:`unmasked.Inpainter`, as a user's call would be.

    python benchmarks/object_removal_figure.py --out docs/object_removal.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

from unmasked import Inpainter
from unmasked.conventions import save_image


def _dilate(hole: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))) > 0


def scenes() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 photo, bool hole) of each object removal."""
    rocket = data.rocket()
    hole = np.zeros(rocket.shape[:2], np.uint8)
    tower = [(438, 112), (456, 112), (462, 190), (472, 290), (484, 427), (424, 427), (434, 290), (440, 190)]
    cv2.fillPoly(hole, [np.array(tower, np.int32)], 1)
    out = [("rocket: the launch tower on the right", rocket, _dilate(hole, 4))]
    coffee = data.coffee()
    hole = np.zeros(coffee.shape[:2], np.uint8)
    cv2.ellipse(hole, (366, 284), (44, 46), 0, 0, 360, 1, thickness=-1)
    cv2.line(hole, (372, 245), (410, 70), 1, 16)
    out.append(("coffee: the spoon", coffee, _dilate(hole, 5)))
    astronaut = data.astronaut()
    hole = np.zeros(astronaut.shape[:2], np.uint8)
    shuttle = [(396, 0), (462, 0), (462, 200), (474, 268), (352, 288), (356, 200), (380, 60)]
    cv2.fillPoly(hole, [np.array(shuttle, np.int32)], 1)
    out.append(("astronaut: the shuttle model", astronaut, _dilate(hole, 4)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="fillers, in columns (default: telea, patchmatch, auto)")
    parser.add_argument("--out", type=Path, default=Path("docs/object_removal.png"))
    parser.add_argument("--height", type=int, default=300, help="row height of the figure (px)")
    args = parser.parse_args()
    models = args.model or ["telea", "patchmatch", "auto"]
    fillers = {m: Inpainter(m) for m in models}
    rows = []
    for name, photo, hole in scenes():
        shown = photo.copy()
        shown[hole] = 255
        cells = [shown]
        for m, inpainter in fillers.items():
            start = time.perf_counter()
            filled = np.asarray(inpainter.fill(Image.fromarray(photo), Image.fromarray(hole.astype(np.uint8) * 255)))
            print(f"{name:<40} {m:<24} {time.perf_counter() - start:6.2f} s  hole {hole.mean():.1%}")
            cells.append(filled)
        scale = args.height / photo.shape[0]
        size = (round(photo.shape[1] * scale), args.height)
        rows.append(np.concatenate([cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in cells], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    save_image(args.out, np.concatenate(rows, axis=0))
    print(f"columns: photo (hole white) | {' | '.join(models)}; wrote {args.out}")


if __name__ == "__main__":
    main()
