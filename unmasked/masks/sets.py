"""Fixed mask sets for evaluation and validation: the PConv benchmark's cells, generated or read from a folder.

Liu et al. (ECCV 2018, Sec. 5) score inpainting in six hole-ratio buckets, each with holes
that touch the image border and holes that do not: twelve cells (:data:`CELLS`). The same
seeded sets serve ``unmasked eval`` (:mod:`unmasked.evaluation.run`) and the validation of
training runs (:mod:`unmasked.training.data`), so a validation score means the same as an
evaluation score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unmasked.masks.folder import MaskFolder
from unmasked.masks.generators import make_mask
from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_of, hole_ratio, touches_border

CELLS = [(b, border) for b in range(len(HOLE_RATIO_BUCKETS)) for border in (False, True)]


@dataclass
class EvalMask:
    """One hole of a set: ``name`` (a file name or a generated one) and ``hole`` bool (S, S), True = hole."""

    name: str
    hole: np.ndarray  # bool (S, S)
    image_index: int | None = None  # a mask made for one image (e.g. a face mask on its face)
    #: 68 landmarks of that image's face: the fill's identity distance is then measured
    landmarks: np.ndarray | None = None


def masks_from_folder(root: str | Path, size: int, per_cell: int | None = None) -> list[EvalMask]:
    """Masks from a folder, resized to ``size``; ``per_cell`` keeps the first K of each cell."""
    folder = MaskFolder(root)
    if len(folder) == 0:
        raise ValueError(f"no mask images found in {root}")
    masks = [EvalMask(Path(r.path).name, folder.load(i, size)) for i, r in enumerate(folder.records)]
    if per_cell is None:
        return masks
    kept, counts = [], {}
    for m in masks:
        cell = (bucket_of(hole_ratio(m.hole)), touches_border(m.hole))
        if cell[0] is not None and counts.get(cell, 0) < per_cell:
            counts[cell] = counts.get(cell, 0) + 1
            kept.append(m)
    return kept


def generated_masks(kind: str, size: int, per_cell: int, seed: int = 0) -> list[EvalMask]:
    """``per_cell`` masks per (bucket, border) cell for kind "bucketed"; else 12 x per_cell masks."""
    rng = np.random.default_rng(seed)
    if kind == "bucketed":
        return [
            EvalMask(f"bucketed_b{b}_{'border' if border else 'inner'}_{k:03d}", make_mask(kind, size, rng, bucket=b, touches_border=border))
            for b, border in CELLS
            for k in range(per_cell)
        ]
    return [EvalMask(f"{kind}_{k:04d}", make_mask(kind, size, rng)) for k in range(per_cell * len(CELLS))]
