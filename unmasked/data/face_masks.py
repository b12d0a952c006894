"""Folders of face photos and worn masks: landmarks detected once and cached, whole folders masked.

The folder jobs around :mod:`unmasked.masks.face_mask` (the MaskTheFace method): the
landmarks of every photo of a training set, kept in an ``.npz`` so dlib / BlazeFace run once
(:func:`landmarks_cache`), and ``unmasked masks face --input-dir`` (:func:`mask_folder`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unmasked.conventions import ImageReadError, load_image, save_image, save_mask
from unmasked.data.datasets import list_images
from unmasked.faces import detect_faces
from unmasked.masks.face_mask import put_face_masks
from unmasked.masks.procedural import PROCEDURAL_KINDS
from unmasked.masks.templates import TemplateSet, load_texture, parse_colour


def landmarks_cache(
    folder: str | os.PathLike, size: int, cache_path: str | os.PathLike, *, detector: str = "auto"
) -> dict[str, np.ndarray]:
    """68 landmarks of every image below ``folder``, in the pixels of the image resized to ``size`` x ``size``.

    Detects once and keeps the result in ``cache_path`` (an ``.npz`` with ``paths``, ``landmarks``
    (N, 68, 2), ``size`` and ``missing``); later calls read it and detect only new files. Keys are
    paths relative to ``folder`` (posix). Images without a detected face are left out (and
    remembered in ``missing`` so they are not retried); use the mean face for them.
    """
    folder, cache_path = Path(folder), Path(cache_path)
    result: dict[str, np.ndarray] = {}
    missing: set[str] = set()
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            if int(z["size"]) == size:
                result = {str(p): lm for p, lm in zip(z["paths"], z["landmarks"], strict=True)}
                missing = {str(p) for p in z["missing"]}
    todo = [p for p in list_images(folder) if p.relative_to(folder).as_posix() not in result
            and p.relative_to(folder).as_posix() not in missing]
    for path in todo:
        rgb = load_image(path).rgb
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        faces = detect_faces(rgb, detector=detector, min_size=size // 8)
        key = path.relative_to(folder).as_posix()
        if faces:
            result[key] = faces[0].landmarks
        else:
            missing.add(key)
    if todo or not cache_path.is_file():
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(result)
        tmp = cache_path.with_name(f".{cache_path.stem}.tmp.npz")
        np.savez(tmp, paths=np.array(keys, dtype=str), size=np.array(size),
                 landmarks=np.array([result[k] for k in keys], dtype=np.float32).reshape(-1, 68, 2),
                 missing=np.array(sorted(missing), dtype=str))
        os.replace(tmp, cache_path)
    return result


@dataclass
class FaceMaskItem:
    """One photo of :func:`mask_folder`: ``status`` is "masked", "no_face" or "error"."""

    source: Path
    status: str
    faces: int = 0
    image_path: Path | None = None
    mask_path: Path | None = None
    message: str = ""


def mask_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    kind: str = "random",
    templates: TemplateSet | None = None,
    seed: int = 0,
    detector: str = "blazeface",
    colour=None,
    texture=None,
    weight: float = 0.5,
) -> Iterator[FaceMaskItem]:
    """Put masks on every face of every photo below ``input_dir`` (``colour`` / ``texture`` /
    ``weight`` restyle them as in :func:`put_face_mask`).

    For ``a/b.jpg`` writes ``output_dir/a/b.png`` (the masked photo, PNG so the pixels match the
    mask exactly) and ``output_dir/a/b_mask.png`` (white = hole). Each photo's masks come from
    ``default_rng([seed, crc32(relative path)])``: reproducible, and independent of the other files.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if kind != "random" and templates is None and kind not in PROCEDURAL_KINDS:
        raise ValueError(f"unknown mask type {kind!r}; choose from {', '.join(PROCEDURAL_KINDS)}, random")
    if colour is not None and texture is not None:
        raise ValueError("give a colour or a texture, not both")
    if colour is not None:
        parse_colour(colour)  # fail before any photo is read
    if texture is not None and texture != "random":
        load_texture(texture)
    if texture == "random" and (templates is None or not templates.textures):
        raise ValueError("texture 'random' needs a template folder with a textures/ subfolder (--templates)")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    for path in list_images(input_dir):
        rel = path.relative_to(input_dir)
        try:
            rgb = load_image(path).rgb
        except ImageReadError as e:
            yield FaceMaskItem(path, "error", message=str(e))
            continue
        faces = detect_faces(rgb, detector=detector)
        if not faces:
            yield FaceMaskItem(path, "no_face")
            continue
        rng = np.random.default_rng([seed, zlib.crc32(rel.as_posix().encode())])
        masked, hole = put_face_masks(rgb, faces, rng, kind=kind, templates=templates, colour=colour,
                                      texture=texture, weight=weight)
        stem = output_dir / rel.with_suffix("")
        image_path, mask_path = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + "_mask.png")
        save_image(image_path, masked)
        save_mask(mask_path, hole)
        yield FaceMaskItem(path, "masked", len(faces), image_path, mask_path)
