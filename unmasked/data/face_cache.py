"""A cache of aligned faces with dlib's landmarks and descriptors, built once over identity folders.

:func:`build_cache` runs dlib once over ``<root>/<identity>/<image>`` folders (HOG detection,
68 landmarks, 128-d descriptor; King, "Dlib-ml", JMLR 2009) and stores, per image, the
FFHQ-aligned 128 x 128 crop (:func:`unmasked.faces.align.align_face`), its landmarks in crop
pixels and the descriptor, in shards below a cache folder outside the repository. Held-out
identities (:func:`unmasked.data.datasets.identity_split` == "val") come first, capped per
identity, then the training identities in a seeded random order, so a run stopped at any time
leaves a usable prefix. Shards are written as they fill; a rerun skips cached images.

Used to distil dlib's descriptor into the shipped embedder
(:mod:`unmasked.training.identity_distill`) and to score identity embedders
(:mod:`unmasked.evaluation.identity`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unmasked.conventions import load_image
from unmasked.data.datasets import identity_split, scan_identities
from unmasked.faces.align import align_face
from unmasked.faces.descriptor import dlib_descriptor
from unmasked.faces.detect import detect_faces

CROP_SIZE = 128


@dataclass
class FaceCache:
    """Cached faces: ``keys`` (N,) "set/identity/file", ``identity`` (N,) str, ``split`` (N,) "train"/"val",
    ``crops`` uint8 (N, 128, 128, 3) FFHQ-aligned, ``landmarks`` float32 (N, 68, 2) crop pixels,
    ``descriptor`` float32 (N, 128) raw dlib, ``box`` float32 (N, 4) HOG box / original side."""

    keys: np.ndarray
    identity: np.ndarray
    split: np.ndarray
    crops: np.ndarray
    landmarks: np.ndarray
    descriptor: np.ndarray
    box: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray) -> FaceCache:
        return FaceCache(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def _plan(roots: list[Path], val_fraction: float, split_seed: int, val_per_identity: int, seed: int,
          splits: tuple[str, ...] = ("val", "train")):
    val, train = [], []
    for root in roots:
        for ident, paths in scan_identities(root).items():
            split = identity_split(ident, val_fraction, split_seed)
            items = [(f"{root.name}/{ident}/{p.name}", ident, split, p) for p in paths]
            if split == "val":
                val.extend(items[:val_per_identity])
            else:
                train.extend(items)
    order = np.random.default_rng(seed).permutation(len(train))
    return (val if "val" in splits else []) + ([train[i] for i in order] if "train" in splits else [])


def load_cache(cache_dir: str | os.PathLike) -> FaceCache:
    """All shards below ``cache_dir`` as one :class:`FaceCache`."""
    shards = sorted(Path(cache_dir).glob("shard_*.npz"))
    if not shards:
        raise FileNotFoundError(f"no face cache shards in {cache_dir}; run build_cache first")
    parts = [dict(np.load(s, allow_pickle=False)) for s in shards]
    fields = FaceCache.__dataclass_fields__
    return FaceCache(**{f: np.concatenate([p[f] for p in parts]) for f in fields})


def build_cache(roots: list[str | os.PathLike], cache_dir: str | os.PathLike, *, val_fraction: float = 0.2,
                split_seed: int = 0, val_per_identity: int = 8, seed: int = 0, shard_size: int = 100,
                time_budget_s: float | None = None, splits: tuple[str, ...] = ("val", "train"), log=print) -> int:
    """Detect, describe and align every planned image (see module docstring); returns the number cached.

    ``splits``: which identities to plan ("val": the held-out ones, at most ``val_per_identity`` images each).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    for s in cache_dir.glob("shard_*.npz"):
        with np.load(s, allow_pickle=False) as z:
            done.update(str(k) for k in z["keys"])
    missing_file = cache_dir / "missing.txt"
    missing = set(missing_file.read_text().split("\n")) if missing_file.is_file() else set()
    plan = [p for p in _plan([Path(r) for r in roots], val_fraction, split_seed, val_per_identity, seed, tuple(splits))
            if p[0] not in done and p[0] not in missing]
    start, buf, n_shard = time.time(), [], len(list(cache_dir.glob("shard_*.npz")))
    log(f"{len(done)} cached, {len(plan)} to do")

    def flush():
        nonlocal buf, n_shard
        if not buf:
            return
        arrays = {f: np.stack([b[f] for b in buf]) for f in FaceCache.__dataclass_fields__}
        tmp = cache_dir / f".shard_{n_shard:04d}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, cache_dir / f"shard_{n_shard:04d}.npz")
        n_shard, buf = n_shard + 1, []
        missing_file.write_text("\n".join(sorted(missing)))

    count = 0
    for key, ident, split, path in plan:
        if time_budget_s is not None and time.time() - start > time_budget_s:
            break
        rgb = load_image(path).rgb
        faces = detect_faces(rgb, detector="hog", upsample=0) or detect_faces(rgb, detector="hog", upsample=1)
        if not faces:
            missing.add(key)
            continue
        face = faces[0]
        aligned = align_face(rgb, face, CROP_SIZE)
        side = float(max(rgb.shape[:2]))
        buf.append({"keys": key, "identity": ident, "split": split, "crops": aligned.image,
                    "landmarks": aligned.landmarks.astype(np.float32),
                    "descriptor": dlib_descriptor(rgb, face.landmarks),
                    "box": np.array(face.box, dtype=np.float32) / side})
        count += 1
        if len(buf) >= shard_size:
            flush()
            log(f"{len(done) + count} cached ({time.time() - start:.0f} s, {len(missing)} without a face)")
    flush()
    log(f"done: {len(done) + count} cached, {len(missing)} without a face, {time.time() - start:.0f} s")
    return len(done) + count
