"""Score models and baselines on the same images and masks, per hole-ratio bucket.

The protocol follows the Partial Convolutions paper (Liu et al., ECCV 2018, Sec. 5):
masks in six hole-ratio buckets, with and without holes touching the border; the output
is composited (known pixels from the ground truth) before L1, PSNR and SSIM are measured.
Every model runs through the same :func:`unmasked.pipelines.fill.fill_array` that users
call, so what is scored is what is shipped.

Each mask is used once; images are cycled in a seeded order, so ``K`` masks per cell and
``N`` images give ``12 K`` samples per model (``K * 12 > N`` reuses images with other masks).
Mask bucket and border flag are computed at the evaluation resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unmasked.api import load_model
from unmasked.data.datasets import IdentityFolderDataset, ImageFolderDataset, file_split
from unmasked.evaluation.realism import c2st, deepest_patch, hole_patch
from unmasked.evaluation.report import write_report
from unmasked.faces import detect_faces
from unmasked.faces.descriptor import dlib_descriptor
from unmasked.masks import bucket_of, hole_ratio, touches_border
from unmasked.masks.face_mask import face_mask_for_aligned
from unmasked.masks.sets import CELLS, EvalMask, generated_masks, masks_from_folder  # noqa: F401 (re-exported)
from unmasked.metrics import detail_percent, score_image
from unmasked.pipelines.fill import fill_array


@dataclass
class EvalResult:
    records: list[dict]
    paths: dict[str, Path] = field(default_factory=dict)
    #: model -> classifier two-sample test result (:func:`unmasked.evaluation.realism.c2st`)
    realism: dict[str, dict] = field(default_factory=dict)


def load_eval_images(images: str | Path, size: int, *, split: str = "all", crop: str = "center", limit: int | None = None,
                     val_fraction: float = 0.2, split_by: str = "identity") -> tuple[list[str], np.ndarray]:
    """Names and uint8 (N, S, S, 3) pixels of the evaluation images.

    ``split`` "train"/"val" keeps one side of a split; "all" takes every image below the folder.
    ``split_by`` "identity" treats ``images`` as ``<identity>/<image>`` folders and splits by
    identity; "file" splits the sorted files by a fixed 1-in-N slice, as training on a plain
    folder does (:func:`~unmasked.data.datasets.file_split`).
    """
    if split_by not in ("identity", "file"):
        raise ValueError(f"split_by must be 'identity' or 'file', got {split_by!r}")
    if split == "all" or split_by == "file":
        ds = ImageFolderDataset(images, size, crop=crop, limit=limit if split == "all" else None)
        if split != "all":
            ds.paths = [ds.paths[i] for i in file_split(len(ds.paths), split, val_fraction)]
    else:
        ds = IdentityFolderDataset(images, size, split=split, crop=crop, val_fraction=val_fraction)
    n = len(ds) if limit is None else min(limit, len(ds))
    # spread a limited selection over the whole set (not just the first identities)
    indices = np.linspace(0, len(ds) - 1, n).round().astype(int) if n < len(ds) else np.arange(len(ds))
    names = [str(Path(ds.paths[i]).relative_to(images)) for i in indices]
    return names, np.stack([ds.pixels(int(i)) for i in indices])


def face_masks_for_images(images: np.ndarray, seed: int = 0, kind: str = "random") -> list[EvalMask]:
    """One synthetic worn face mask per aligned face image (MaskTheFace method, built-in templates).

    Landmarks come from dlib on each image; where no face is found the mean aligned face is
    used (see :func:`unmasked.masks.face_mask.face_mask_for_aligned`).
    """
    masks = []
    for i, image in enumerate(images):
        faces = detect_faces(image, detector="hog", upsample=1)
        landmarks = faces[0].landmarks if faces else None
        rng = np.random.default_rng([seed, i])
        _, hole = face_mask_for_aligned(image.shape[0], rng, landmarks=landmarks, kind=kind)
        masks.append(EvalMask(f"face_{i:04d}", hole, image_index=i, landmarks=landmarks))
    return masks


def evaluate(
    models: Sequence[str],
    names: Sequence[str],
    images: np.ndarray,
    masks: Sequence[EvalMask],
    *,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    patches: dict[str, tuple[list, list, list, list]] | None = None,
    groups_by: str = "identity",
    realism_patch: str = "box",
) -> list[dict]:
    """Records (one per model x mask) with l1 / psnr / ssim / seconds / detail and the mask's cell.

    ``patches``, when given, receives per model ``(fills, reals, groups, buckets)``: the square
    around each hole (:func:`~unmasked.evaluation.realism.hole_patch`, half the image's side) in
    the fill and in the photo, the image's group (:func:`group_of`) and the mask's hole-ratio
    bucket, for :func:`realism_scores`. ``realism_patch`` "deepest" takes instead the 64 px square
    around the hole's deepest pixel at the image's resolution
    (:func:`~unmasked.evaluation.realism.deepest_patch`), for photos with scattered holes.

    Masks that carry their face's landmarks also get ``identity``: the distance between dlib's
    descriptors of the filled and the original face, both cut with those landmarks.
    """
    if len(images) == 0 or len(masks) == 0:
        raise ValueError("evaluation needs at least one image and one mask")
    if realism_patch not in ("box", "deepest"):
        raise ValueError(f"realism_patch must be 'box' or 'deepest', got {realism_patch!r}")
    size = images.shape[1:3]
    for m in masks:
        if m.hole.shape != size:
            raise ValueError(f"mask {m.name} is {m.hole.shape}, images are {size}")
    order = np.random.default_rng(seed).permutation(len(images))
    pairs = [(m.image_index if m.image_index is not None else int(order[j % len(images)]), m) for j, m in enumerate(masks)]
    loaded = [(spec, load_model(spec)) for spec in models]
    truth_descriptors: dict[int, np.ndarray] = {}

    def identity_distance(i: int, m: EvalMask, out: np.ndarray) -> float | None:
        if m.landmarks is None:
            return None

        if i not in truth_descriptors:
            truth_descriptors[i] = dlib_descriptor(images[i], m.landmarks)
        return float(np.linalg.norm(dlib_descriptor(out, m.landmarks) - truth_descriptors[i]))

    records = []
    for spec, model in loaded:
        for k, (i, m) in enumerate(pairs):
            if not m.hole.any() or m.hole.all():
                continue
            start = time.perf_counter()
            out = fill_array(images[i], m.hole, model).image
            seconds = time.perf_counter() - start
            ratio = hole_ratio(m.hole)
            if patches is not None:
                fills, reals, groups, buckets = patches.setdefault(records_name(spec), ([], [], [], []))
                if realism_patch == "deepest":
                    fills.append(deepest_patch(out, m.hole))
                    reals.append(deepest_patch(images[i], m.hole))
                else:
                    side = max(32, size[0] // 2)
                    fills.append(hole_patch(out, m.hole, side))
                    reals.append(hole_patch(images[i], m.hole, side))
                groups.append(group_of(names[i]) if groups_by == "identity" else names[i])
                buckets.append(bucket_of(ratio))
            records.append({
                "model": records_name(spec),
                "image": names[i], "mask": m.name, "hole_ratio": ratio, "bucket": bucket_of(ratio),
                "touches_border": touches_border(m.hole), **score_image(out, images[i]), "seconds": seconds,
                "detail": detail_percent(out, images[i], m.hole), "identity": identity_distance(i, m, out),
            })
            if progress is not None:
                progress(str(spec), k + 1, len(pairs))
    return records


def records_name(spec) -> str:
    """The model column of a record: a checkpoint's file stem, else the spec as given."""
    return Path(spec).stem if str(spec).endswith(".safetensors") else str(spec)


def group_of(name: str) -> str:
    """The realism test's group of an image: its identity folder (``<identity>/<image>``), else itself."""
    parts = Path(name).parts
    return parts[0] if len(parts) > 1 else name


def realism_scores(patches: dict[str, tuple[list, list, list, list]], seed: int = 0) -> dict[str, dict]:
    """Model -> :func:`~unmasked.evaluation.realism.c2st` of its fills against the photos, with
    the accuracy per hole-ratio bucket under ``"by"``."""
    return {model: c2st(np.stack(f), np.stack(r), g, seed=seed, strata=b) for model, (f, r, g, b) in patches.items()
            if len(set(g)) >= 2}


def run_evaluation(models: Sequence[str], images: str | Path, out_dir: str | Path, *, size: int = 128,
                   masks: str | Path | None = None, mask_kind: str = "bucketed", per_cell: int = 5,
                   split: str = "all", crop: str = "center", limit: int | None = None, seed: int = 0,
                   progress: Callable[[str, int, int], None] | None = None, realism: bool = True,
                   split_by: str = "identity", realism_patch: str = "box") -> EvalResult:
    """Load images and masks, :func:`evaluate`, and write the report into ``out_dir``; ``realism``
    adds the classifier two-sample test per model (:mod:`unmasked.evaluation.realism`), whose
    halves are identities (``split_by`` "identity") or single images ("file")."""
    names, pixels = load_eval_images(images, size, split=split, crop=crop, limit=limit, split_by=split_by)
    if masks:
        mask_list = masks_from_folder(masks, size, per_cell)
    elif mask_kind == "face":
        mask_list = face_masks_for_images(pixels, seed)
    else:
        mask_list = generated_masks(mask_kind, size, per_cell, seed)
    patches: dict = {}
    records = evaluate(models, names, pixels, mask_list, seed=seed, progress=progress,
                       patches=patches if realism else None, groups_by=split_by, realism_patch=realism_patch)
    scores = realism_scores(patches, seed) if realism else {}
    meta = {
        "images": f"{images} (split {split} by {split_by}, crop {crop}, {len(names)} images)",
        "masks": (f"{masks} (first {per_cell} per cell)" if masks else
                  f"synthetic worn face masks (MaskTheFace method), one per image, seed {seed}" if mask_kind == "face" else
                  f"generated '{mask_kind}', {per_cell} per cell, seed {seed}"),
        "size": f"{size}x{size}",
        "realism patch": {"box": "the square around the whole hole, half the image's side",
                          "deepest": "64 px around the hole's deepest pixel, at the image's resolution"}[realism_patch],
    }
    paths = write_report(records, out_dir, title="Inpainting evaluation", meta=meta, realism=scores)
    return EvalResult(records, paths, scores)
