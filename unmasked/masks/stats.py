"""Mask statistics shared by generators, readers and the evaluation harness.

Hole-ratio buckets follow the Partial Convolutions paper (Liu et al., ECCV 2018, Sec. 4.1):
six buckets (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6], each with and without holes touching
the image border.
"""

from __future__ import annotations

import numpy as np

#: (low, high] hole-ratio bounds of the six PConv buckets, indexed 0..5
HOLE_RATIO_BUCKETS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a bool / {0, 1} mask (H, W)."""
    mask = np.asarray(mask)
    return float(np.count_nonzero(mask)) / mask.size


def touches_border(mask: np.ndarray) -> bool:
    """True if any hole pixel lies on the outermost row or column."""
    m = np.asarray(mask) != 0
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def bucket_of(ratio: float) -> int | None:
    """Index of the bucket whose (low, high] range holds ``ratio``, or None outside all."""
    for i, (lo, hi) in enumerate(HOLE_RATIO_BUCKETS):
        if lo < ratio <= hi:
            return i
    return None


def bucket_label(bucket: int) -> str:
    """Human label of a bucket, e.g. ``"(0.10, 0.20]"``."""
    lo, hi = HOLE_RATIO_BUCKETS[bucket]
    return f"({lo:.2f}, {hi:.2f}]"
