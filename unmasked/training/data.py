"""Training data indexed by step, so that resuming continues with exactly the same batches.

Every sample is addressed by ``(step, slot)``: which image, which mask and whether to flip
are drawn from a generator seeded by ``(seed, step, slot, rank)``. The batch sampler yields
the steps of one checkpoint interval; after a resume, it starts at the restored step. Images
are decoded and resized once into RAM; masks come from pre-drawn banks, so the hot loop only
indexes arrays.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from unmasked.api import load_model
from unmasked.conventions import load_image
from unmasked.data.datasets import IdentityFolderDataset, ImageFolderDataset, MNISTDataset, file_split, list_images
from unmasked.data.landmark_guide import draw_guide, jitter_landmarks, mouth_opening
from unmasked.data.mask_seg import aligned_landmarks, save_npz, under_mask_landmarks
from unmasked.data.sketch import edge_sketch, training_sketch
from unmasked.hub import DEFAULT_SEGMENTER, shipped_weights
from unmasked.masks import MaskBank
from unmasked.masks.face_mask import face_mask_for_aligned, jittered_mean_landmarks
from unmasked.masks.sets import generated_masks
from unmasked.pipelines.unmask import REGION_VERSION, unmask_array, worn_mask_region
from unmasked.training.config import TrainConfig


class RandomCrops:
    """Whole photos (uint8 (H, W, 3) each) that give a random square crop per draw: side a
    uniform fraction in ``scales`` of the shorter side, anywhere in the photo, resized to ``size``
    (area averaging). Makes a few hundred photos many different training images: each photo is
    seen at several scales, as object-removal holes in real photos come at every scale."""

    def __init__(self, photos: list[np.ndarray], size: int, scales: tuple[float, float]) -> None:
        self.photos, self.size, self.scales = photos, size, scales

    def __len__(self) -> int:
        return len(self.photos)

    def draw(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """uint8 (S, S, 3) crop of photo ``index``."""
        photo = self.photos[index]
        h, w = photo.shape[:2]
        side = max(1, round(rng.uniform(*self.scales) * min(h, w)))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[top : top + side, left : left + side]
        interp = cv2.INTER_AREA if side > self.size else cv2.INTER_CUBIC
        return torch.from_numpy(np.ascontiguousarray(cv2.resize(crop, (self.size, self.size), interpolation=interp)))


def build_split(cfg: TrainConfig, split: str) -> tuple[torch.Tensor | RandomCrops, np.ndarray]:
    """uint8 (N, S, S, 3) pixels of one split ("train" / "val"), decoded once, and int64 (N,)
    group labels: the identity (identity folders) or the digit (MNIST); -1 for plain folders.
    With ``data.scales`` the training split is a :class:`RandomCrops` of the whole photos."""
    d = cfg.data
    if d.kind == "mnist":
        ds = MNISTDataset(split, d.size)
        pixels = ((ds.images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return pixels, ds.labels.astype(np.int64)
    if d.kind == "identity":
        ds = IdentityFolderDataset(d.root, d.size, split=split, crop=d.crop, val_fraction=d.val_fraction, preload=False)
        names = {ident: k for k, ident in enumerate(dict.fromkeys(ds.identities))}
        labels = np.array([names[ident] for ident in ds.identities], dtype=np.int64)
    else:  # a plain folder: a fixed 1-in-N slice of files is the validation split
        ds = ImageFolderDataset(d.root, d.size, crop=d.crop)
        ds.paths = [ds.paths[i] for i in file_split(len(ds.paths), split, d.val_fraction)]
        labels = np.full(len(ds.paths), -1, dtype=np.int64)
        if d.scales is not None and split == "train":
            n = len(ds) if d.limit is None else min(d.limit, len(ds))
            photos = [load_image(p).rgb for p in ds.paths[:n]]
            return RandomCrops(photos, d.size, (float(d.scales[0]), float(d.scales[1]))), labels[:n]
    n = len(ds) if d.limit is None or split == "val" else min(d.limit, len(ds))
    return torch.from_numpy(np.stack([ds.pixels(i) for i in range(n)])), labels[:n]


def split_landmarks(cfg: TrainConfig, split: str) -> np.ndarray:
    """float32 (N, 68, 2): the landmarks of each image of :func:`build_split`'s ``split``, in its
    pixels (``data.size``), for a landmark-guided model; with ``data.landmark_source``
    "under_mask", float32 (N, V, 68, 2): FaceMesh's V guesses under synthetic worn masks, a guess
    that found no face replaced by the exact points.

    They are FaceMesh's, found once per folder and cached under ``data.landmarks_cache``
    (:func:`unmasked.data.mask_seg.aligned_landmarks` and
    :func:`~unmasked.data.mask_seg.under_mask_landmarks`, which expect an aligned face folder and
    find them on each image resized to 256 x 256, so images must be square).
    """
    d = cfg.data
    if d.kind != "identity" or d.crop != "center" or d.limit is not None:
        raise ValueError("a landmark-guided model trains on an aligned identity folder (data.kind identity, "
                         "crop center, no limit)")
    if d.landmark_source not in ("exact", "under_mask"):
        raise ValueError(f"data.landmark_source must be 'exact' or 'under_mask', got {d.landmark_source!r}")
    ds = IdentityFolderDataset(d.root, d.size, split=split, crop=d.crop, val_fraction=d.val_fraction, preload=False)
    root = Path(d.root)
    cache = Path(d.landmarks_cache).expanduser() / f"{root.resolve().name}_lm256_fixedbox.npz"
    found = aligned_landmarks(root, cache, size=256)
    keys = [Path(p).relative_to(root).as_posix() for p in ds.paths]
    missing = [k for k in keys if k not in found]
    if missing:
        raise ValueError(f"{len(missing)} images of {root} have no cached landmarks (e.g. {missing[0]}); "
                         f"delete {cache} to find them again")
    lm = np.stack([found[k] for k in keys]).astype(np.float64)
    if d.landmark_source == "under_mask":
        name = f"{root.resolve().name}_lm256_undermask{d.landmark_variants}.npz"
        guesses = under_mask_landmarks(root, cache.with_name(name), found, variants=d.landmark_variants)
        if any(k not in guesses for k in keys):
            raise ValueError(f"images of {root} were added since {cache.with_name(name)} was made; delete it to "
                             "guess their landmarks too")
        guess = np.stack([guesses[k] for k in keys]).astype(np.float64)
        lm = np.where(np.isfinite(guess), guess, lm[:, None])
    return ((lm + 0.5) * (d.size / 256) - 0.5).astype(np.float32)


def closed_mouths(cfg: TrainConfig, split: str) -> np.ndarray | None:
    """bool (N,): which images of ``split`` to train on under ``data.max_mouth_open`` (None: all).

    Read from FaceMesh's exact points on the unmasked photos (the cache :func:`split_landmarks`
    uses), whatever ``data.landmark_source`` is: the guess under a worn mask cannot see the mouth.
    """
    if cfg.data.max_mouth_open is None:
        return None
    exact = split_landmarks(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, landmark_source="exact")), split)
    return mouth_opening(exact) <= cfg.data.max_mouth_open


def reference_groups(labels: np.ndarray) -> dict[int, np.ndarray]:
    """label -> indices of its images, for labels with at least two images (a reference must differ)."""
    groups = {int(k): np.flatnonzero(labels == k) for k in np.unique(labels) if k >= 0}
    return {k: v for k, v in groups.items() if len(v) >= 2}


FACE_MASK_KINDS = ("face", "face_region")
"""Mask kinds drawn on the mean FFHQ-aligned face rather than by :func:`~unmasked.masks.make_mask`:

* ``face``: the exact hole of a synthetic worn mask (MaskTheFace method, procedural templates)
  on jittered mean landmarks, dilated by 0-4 % of the side, as a mask segmenter's dilated
  output would be;
* ``face_region``: the landmark-heuristic worn-mask region used by ``unmasked unmask`` when no
  segmenter is available (:func:`~unmasked.pipelines.unmask.worn_mask_region`).
"""


def face_mask_bank(kind: str, count: int, size: int, seed: int) -> MaskBank:
    """A bank of ``count`` worn-mask holes of ``kind`` (one of :data:`FACE_MASK_KINDS`) at ``size``.

    Not augmented by flips or rotations (a mask belongs on the lower face); the training
    images' horizontal flips mirror them.
    """
    if kind not in FACE_MASK_KINDS:
        raise ValueError(f"unknown face mask kind {kind!r}; valid: {', '.join(FACE_MASK_KINDS)}")
    masks = np.empty((count, size, size), np.uint8)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
        rng = np.random.default_rng(child)
        if kind == "face":
            hole = face_mask_for_aligned(size, rng)[1].astype(np.uint8)
            r = int(rng.integers(0, max(1, round(0.04 * size)) + 1))
            if r:
                hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        else:
            hole = worn_mask_region(jittered_mean_landmarks(size, rng), size, grow=rng.uniform(0.02, 0.06))
        masks[i] = hole
    return MaskBank(masks, augment=False)


#: every n-th photo of a real-photo folder (sorted by name) gives no ``real_worn`` hole: with the
#: RMFD folder these are the photos of the README's by-eye check (``benchmarks/unmask_real_photos.py``)
REAL_HOLDOUT_EVERY = 29


def real_worn_holes(root: str | Path, size: int, cache_dir: str | Path, *, held_out: bool = False) -> np.ndarray:
    """uint8 (N, size, size): the hole ``unmask`` paints on each masked face it finds in the real
    photos below ``root`` (every :data:`REAL_HOLDOUT_EVERY`-th photo left out), in the face's
    aligned crop.

    Real worn masks are larger than the synthetic ones (on RMFD a median 21.6 % of the aligned
    crop, 789 faces, against 17.5 %, starting higher and running out past the cheeks), and the hole
    is the pipeline's own: the segmenter's region grown by colour, dilated, the eyes taken out, the
    crop zoomed out where the mask runs off its bottom
    (:func:`unmasked.pipelines.unmask.unmask_array`; the classical fill it makes is discarded).
    A face model trained only on synthetic holes meets these first in use. Cached in
    ``cache_dir`` (about 90 s for 1,000 photos on a shared 2-core CPU); a cache made from other
    photos, by other segmenter weights or by another version of the region
    (:data:`~unmasked.pipelines.unmask.REGION_VERSION`) is rebuilt. ``held_out``: the holes of the held-out photos instead, for evaluation only.
    """
    root = Path(root)
    paths = list_images(root)
    if not paths:
        raise ValueError(f"no images found under {root} for masks.real_photos")
    held = set(paths[::REAL_HOLDOUT_EVERY])
    keys = np.array([p.relative_to(root).as_posix() for p in paths if (p in held) == held_out], dtype=str)
    cache = Path(cache_dir).expanduser() / f"{root.resolve().name}_real_worn{size}{'_held_out' if held_out else ''}.npz"
    segmenter = np.array(hashlib.sha256(shipped_weights()[DEFAULT_SEGMENTER].read_bytes()).hexdigest())
    region = np.array(REGION_VERSION)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if (np.array_equal(z["photos"], keys) and {"segmenter", "region"} <= set(z.files)
                    and z["segmenter"] == segmenter and z["region"] == region):
                return np.unpackbits(z["holes"], axis=-1, count=size)
    filler = load_model("telea")
    holes = []
    for key in keys:
        rgb = load_image(root / key).rgb
        stages = unmask_array(rgb, filler, keep_stages=True).stages
        for stage in stages:
            if stage.filled is not None:  # a face whose worn mask was found
                hole = stage.hole.astype(np.uint8)
                holes.append(hole if hole.shape[0] == size else
                             cv2.resize(hole, (size, size), interpolation=cv2.INTER_NEAREST))
    if not holes:
        raise ValueError(f"unmask found no worn mask in the photos of {root}")
    out = np.stack(holes)
    save_npz(cache, photos=keys, segmenter=segmenter, region=region, holes=np.packbits(out, axis=-1))
    return out


def real_worn_bank(holes: np.ndarray, count: int, seed: int) -> MaskBank:
    """A bank of ``count`` holes: each of ``holes`` once, then jittered copies (scaled by 0.95-1.05
    about the crop's centre and shifted by up to 2.5 % of the side), so a few hundred real shapes
    give a bank of thousands without changing where a worn mask sits on the face."""
    n, size = len(holes), holes.shape[-1]
    masks = np.empty((max(count, n), size, size), np.uint8)
    masks[:n] = holes
    rng = np.random.default_rng(seed)
    for i in range(n, len(masks)):
        scale = rng.uniform(0.95, 1.05)
        shift = rng.uniform(-0.025, 0.025, 2) * size
        c = (size - 1) / 2
        matrix = np.array([[scale, 0, c * (1 - scale) + shift[0]], [0, scale, c * (1 - scale) + shift[1]]])
        masks[i] = cv2.warpAffine(holes[rng.integers(n)], matrix, (size, size), flags=cv2.INTER_NEAREST)
    return MaskBank(masks, augment=False)


def build_mask_banks(cfg: TrainConfig) -> tuple[list[MaskBank], np.ndarray]:
    """One bank per mask kind and the normalised mixing weights."""
    kinds = cfg.masks.kinds
    banks = []
    for k, kind in enumerate(kinds):
        seed = cfg.masks.seed + k
        if kind in FACE_MASK_KINDS:
            banks.append(face_mask_bank(kind, cfg.masks.bank_size, cfg.data.size, seed=seed))
        elif kind == "real_worn":
            holes = real_worn_holes(cfg.masks.real_photos, cfg.data.size, cfg.masks.real_cache)
            banks.append(real_worn_bank(holes, cfg.masks.bank_size, seed))
        else:
            banks.append(MaskBank.generate(kind, cfg.masks.bank_size, cfg.data.size, seed=seed, augment=True))
    weights = np.array(list(kinds.values()), dtype=np.float64)
    return banks, weights / weights.sum()


class StepSamples(Dataset):
    """Sample ``(step, slot)`` -> {"image": (3, S, S) in [-1, 1], "mask": (1, S, S), 1 = hole}.

    With ``sketch``, each sample also carries ``"sketch"`` (1, S, S), 1 = line: the image's
    edges in the hole, rough or none (:func:`unmasked.data.sketch.training_sketch`).

    With ``labels`` (int64 (N,), see :func:`build_split`), each sample also carries
    ``"reference"``: a *different* image with the same label (another photo of the person,
    another drawing of the digit), and only images that have one are drawn.

    With ``landmarks`` (float32 (N, 68, 2), in the images' pixels), each sample also carries
    ``"guide"`` (1, S, S): the drawing of its landmarks, jittered as FaceMesh's guess under a worn
    mask may be off (:mod:`unmasked.data.landmark_guide`), flipped with the image. With (N, V, 68,
    2), FaceMesh's own guesses under V worn masks (:func:`split_landmarks`), one of them is drawn
    as it is: it already carries the error the guide has in use.
    """

    def __init__(self, images: torch.Tensor, banks: list[MaskBank], weights: np.ndarray, seed: int,
                 flip: bool = True, rank: int = 0, labels: np.ndarray | None = None, sketch: bool = False,
                 landmarks: np.ndarray | None = None, jitter_lower: float = 0.012, guide_kind: str = "lines") -> None:
        self.images, self.banks, self.weights = images, banks, weights
        self.seed, self.flip, self.rank, self.sketch = seed, flip, rank, sketch
        if landmarks is not None and len(landmarks) != len(images):
            raise ValueError(f"{len(landmarks)} landmark sets for {len(images)} images")
        self.landmarks, self.jitter_lower, self.guide_kind = landmarks, jitter_lower, guide_kind
        self.groups = None if labels is None else reference_groups(labels)
        if self.groups is not None:
            if not self.groups:
                raise ValueError("reference training needs at least one label with two or more images")
            self.labels = labels
            self.anchors = np.concatenate(list(self.groups.values()))

    def __len__(self) -> int:
        return len(self.images)

    def _uint8(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        return self._draw(index, rng)[0]

    def _draw(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, bool]:
        image = self.images.draw(index, rng) if isinstance(self.images, RandomCrops) else self.images[index]
        flipped = bool(self.flip and rng.random() < 0.5)
        return (image.flip(1) if flipped else image), flipped

    def _pixels(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        return self._uint8(index, rng).permute(2, 0, 1).float() / 127.5 - 1.0

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        step, slot = key
        rng = np.random.default_rng([self.seed, step, slot, self.rank])
        if self.groups is None:
            index = int(rng.integers(len(self.images)))
        else:
            index = int(self.anchors[rng.integers(len(self.anchors))])
        pixels, flipped = self._draw(index, rng)
        sample = {"image": pixels.permute(2, 0, 1).float() / 127.5 - 1.0}
        bank = self.banks[int(rng.choice(len(self.banks), p=self.weights))]
        hole = bank.sample(rng)
        sample["mask"] = torch.from_numpy(hole).float()[None]
        if self.sketch:  # DeepFill v2's user-guided mode: the photo's edges in the hole, often rough or absent
            lines = training_sketch(pixels.numpy(), hole > 0, rng)
            sample["sketch"] = torch.from_numpy(lines).float()[None]
        if self.groups is not None:
            others = self.groups[int(self.labels[index])]
            others = others[others != index]
            sample["reference"] = self._pixels(int(others[rng.integers(len(others))]), rng)
        if self.landmarks is not None:
            size = pixels.shape[0]
            points = self.landmarks[index]
            if points.ndim == 3:  # guesses under worn masks: one of them, as it is
                points = points[rng.integers(len(points))]
            else:
                points = jitter_landmarks(points, rng, size, lower=self.jitter_lower)
            guide = draw_guide(points, size, self.guide_kind)
            sample["guide"] = torch.from_numpy(np.ascontiguousarray(guide[:, ::-1] if flipped else guide))[None]
        return sample


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields the batches of steps ``[start, stop)``: batch ``s`` = [(s, 0), ..., (s, B-1)]."""

    def __init__(self, start: int, stop: int, batch_size: int) -> None:
        self.start, self.stop, self.batch_size = start, stop, batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield [(step, slot) for slot in range(self.batch_size)]


def validation_masks(cfg: TrainConfig, count: int) -> np.ndarray:
    """Fixed bucketed masks (bool (count, S, S)) spread over the 12 cells, for validation."""
    per_cell = max(1, -(-count // 12))
    masks = generated_masks("bucketed", cfg.data.size, per_cell, seed=cfg.seed + 1)
    return np.stack([m.hole for m in masks[:count]])


def validation_sketches(images: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """The true-edge sketch (bool (N, S, S)) of each validation image in its hole."""
    return np.stack([edge_sketch(img.numpy(), m) for img, m in zip(images, masks, strict=True)])
