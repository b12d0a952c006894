"""Masks on disk and in memory: folders of mask images, pre-drawn mask banks, mask export.

* :class:`MaskFolder` reads a folder of mask images (white > 127 = hole), such as the NVIDIA
  irregular-mask test set of the Partial Convolutions paper (Liu et al., "Image Inpainting
  for Irregular Holes Using Partial Convolutions", ECCV 2018), and computes each mask's hole
  ratio, border contact and PConv bucket from its pixels.
* :class:`MaskBank` holds N masks as one uint8 array (N, H, W) so training samples a mask
  by indexing instead of drawing one per step.
* :func:`generate_masks` writes generated masks as PNGs plus a ``masks.csv`` of statistics.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from unmasked.conventions import load_mask, save_mask
from unmasked.masks.generators import Size, as_hw, make_mask
from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_of, hole_ratio, touches_border

#: file suffixes read as masks (case-insensitive)
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _resize(mask: np.ndarray, size: Size) -> np.ndarray:
    """Nearest-neighbour resize of a bool (H, W) mask to ``size``; returns bool (H', W')."""
    h, w = as_hw(size)
    if mask.shape == (h, w):
        return mask
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


# --------------------------------------------------------------------------- folders


@dataclass(frozen=True)
class MaskRecord:
    """Statistics of one mask file at its native resolution, computed from its pixels."""

    path: Path
    hole_ratio: float
    touches_border: bool
    bucket: int | None  # index into HOLE_RATIO_BUCKETS, None outside (0.01, 0.6]


class MaskFolder:
    """Every mask image (``*.png``, ``*.jpg``, ``*.bmp``) in ``root``, sorted by file name.

    ``records`` are computed from the pixels on first access (any CSV beside the masks is
    ignored) and kept in memory. They describe the masks at their native resolution;
    ``load(i, size=...)`` resizes with nearest neighbour, which changes the ratio slightly.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"mask folder not found: {self.root}")
        self.paths = sorted(p for p in self.root.iterdir() if p.suffix.lower() in MASK_SUFFIXES and p.is_file())

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"MaskFolder({str(self.root)!r}, {len(self)} masks)"

    def load(self, i: int, size: Size | None = None) -> np.ndarray:
        """Mask ``i`` as bool (H, W), True = hole; resized (nearest) to ``size`` if given."""
        mask = load_mask(self.paths[i])
        return mask if size is None else _resize(mask, size)

    @cached_property
    def records(self) -> list[MaskRecord]:
        """One :class:`MaskRecord` per file, in file order."""
        out = []
        for path in self.paths:
            mask = load_mask(path)
            ratio = hole_ratio(mask)
            out.append(MaskRecord(path, ratio, touches_border(mask), bucket_of(ratio)))
        return out

    def select(self, bucket: int | None = None, touches_border: bool | None = None) -> list[int]:
        """Indices of the masks in ``bucket`` and/or with the given border flag (None = any)."""
        return [
            i
            for i, r in enumerate(self.records)
            if (bucket is None or r.bucket == bucket) and (touches_border is None or r.touches_border == touches_border)
        ]


# --------------------------------------------------------------------------- banks


class MaskBank:
    """A pre-drawn bank of N masks held as uint8 (N, H, W) in {0, 1} (1 = hole).

    ``sample(rng)`` picks one uniformly; with ``augment=True`` it also applies random
    horizontal / vertical flips and, for square masks, a random multiple of 90 degrees.
    """

    def __init__(self, masks: np.ndarray, augment: bool = False) -> None:
        masks = np.asarray(masks)
        if masks.ndim != 3 or len(masks) == 0:
            raise ValueError(f"a mask bank needs a non-empty (N, H, W) array, got shape {masks.shape}")
        self.masks = np.ascontiguousarray(masks != 0, dtype=np.uint8)
        self.augment = augment

    @classmethod
    def generate(cls, kind: str, count: int, size: Size, seed: int, augment: bool = False, **kwargs: Any) -> MaskBank:
        """Draw ``count`` masks of ``kind`` (see ``make_mask``); mask i uses its own child seed of ``seed``."""
        h, w = as_hw(size)
        masks = np.empty((count, h, w), np.uint8)
        for i, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
            masks[i] = make_mask(kind, (h, w), np.random.default_rng(child), **kwargs)
        return cls(masks, augment=augment)

    @classmethod
    def from_folder(
        cls, folder: MaskFolder, size: Size, indices: list[int] | None = None, augment: bool = False
    ) -> MaskBank:
        """Load the masks of ``folder`` (all, or ``indices``), resized (nearest) to ``size``."""
        indices = list(range(len(folder))) if indices is None else list(indices)
        h, w = as_hw(size)
        masks = np.empty((len(indices), h, w), np.uint8)
        for j, i in enumerate(indices):
            masks[j] = folder.load(i, (h, w))
        return cls(masks, augment=augment)

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every mask."""
        return self.masks.shape[1], self.masks.shape[2]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A random mask of the bank as a fresh bool (H, W) array, True = hole."""
        mask = self.masks[rng.integers(len(self.masks))].view(bool)
        if self.augment:
            if rng.random() < 0.5:
                mask = mask[:, ::-1]
            if rng.random() < 0.5:
                mask = mask[::-1]
            k = int(rng.integers(4)) if mask.shape[0] == mask.shape[1] else 0
            mask = np.rot90(mask, k)
        return mask.copy()

    def save(self, path: str | os.PathLike) -> None:
        """Write the bank as a compressed .npz (``masks`` uint8 (N, H, W), ``augment``)."""
        np.savez_compressed(Path(path), masks=self.masks, augment=np.array(self.augment))

    @classmethod
    def load(cls, path: str | os.PathLike) -> MaskBank:
        """Read a bank written by :meth:`save` (no pickled objects are read)."""
        with np.load(Path(path), allow_pickle=False) as data:
            return cls(data["masks"], augment=bool(data["augment"]))


# --------------------------------------------------------------------------- export


def generate_masks(
    kind: str, count: int, size: Size, out_dir: str | os.PathLike, seed: int = 0, **kwargs: Any
) -> list[Path]:
    """Write ``count`` masks of ``kind`` as PNGs (white = hole) named 00000.png, ... plus ``masks.csv``.

    ``masks.csv`` has columns file, kind, hole_ratio, touches_border (0/1), bucket (empty
    outside all buckets), all measured on the written pixels. For ``kind="bucketed"`` without
    ``bucket=``, ``count`` masks are made for every one of the 12 (bucket, border) cells, in
    the order of the NVIDIA test set: bucket 0 without border, bucket 0 with border, bucket 1
    ...; without ``touches_border=`` both flags are made. Mask i is drawn from child i of
    ``SeedSequence(seed)``. Returns the written PNG paths in order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "bucketed":
        buckets = range(len(HOLE_RATIO_BUCKETS)) if kwargs.get("bucket") is None else [kwargs["bucket"]]
        borders = (False, True) if kwargs.get("touches_border") is None else [kwargs["touches_border"]]
        rest = {k: v for k, v in kwargs.items() if k not in ("bucket", "touches_border")}
        jobs = [{**rest, "bucket": b, "touches_border": t} for b in buckets for t in borders for _ in range(count)]
    else:
        jobs = [kwargs] * count
    seeds = np.random.SeedSequence(seed).spawn(len(jobs))
    paths, rows = [], []
    for i, (job, child) in enumerate(zip(jobs, seeds, strict=True)):
        mask = make_mask(kind, size, np.random.default_rng(child), **job)
        path = out_dir / f"{i:05d}.png"
        save_mask(path, mask)
        ratio = hole_ratio(mask)
        bucket = bucket_of(ratio)
        rows.append([path.name, kind, f"{ratio:.6f}", int(touches_border(mask)), "" if bucket is None else bucket])
        paths.append(path)
    with open(out_dir / "masks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "kind", "hole_ratio", "touches_border", "bucket"])
        writer.writerows(rows)
    return paths
