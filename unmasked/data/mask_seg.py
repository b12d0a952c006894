"""Training and evaluation data for the worn-mask segmenter, decoded once into RAM.

Two sources, both as FFHQ-aligned crops (the alignment the pipeline uses, :mod:`unmasked.faces.align`):

* **Synthetic masked faces** from an identity folder of aligned faces (``celeba_wild256``): each
  face gets worn masks by the MaskTheFace method (:func:`unmasked.masks.face_mask.put_face_mask`
  on its cached dlib landmarks), procedural (surgical / N95 / KN95 / cloth) and, when a template
  folder is given, MaskTheFace's own templates; the target is the exact hole. Each face also
  appears once **without** a mask (empty target), so the network learns to say "no mask".
  Identities are split with :func:`unmasked.data.datasets.identity_split` (val fraction 0.2, as
  every face model here), so validation faces belong to people never seen in training.
* **MaskedFace-Net** photos with pixel labels (Cabani et al., "MaskedFace-Net -- A dataset of
  correctly/incorrectly masked face images in the context of COVID-19", Smart Health 2021;
  label 2 = face mask): faces are found with :func:`unmasked.faces.detect_faces`, aligned, and the
  label is warped with the same matrix. A fixed 20 % of the files (hash of ``CWM/00003`` etc.)
  is held out.

Arrays: ``images`` uint8 (N, S, S, 3), ``targets`` uint8 (N, S, S) holding the mask's coverage
of each pixel x 255 (the warped label is area-weighted, synthetic holes are 0/255). Both builders
keep an ``.npz`` cache (outside the repository) so a re-run costs seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from unmasked.conventions import load_image
from unmasked.data.datasets import identity_split, list_images, scan_identities
from unmasked.data.landmark_guide import UNDER_MASK_SIZE, unmasked_guess
from unmasked.faces import align_face, detect_faces, face_from_box
from unmasked.faces.align import transform_points
from unmasked.masks.face_mask import face_mask_for_aligned

#: side of the aligned crops kept in RAM; the segmenter's working size may be smaller
BANK_SIZE = 128
MFN_LABEL_MASK = 2
MFN_VAL_FRACTION = 0.2


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``path`` atomically (a temporary name, then a rename), creating its folder:
    a cache killed while being written is never read back half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


@dataclass
class SegBank:
    """Aligned faces and their mask coverage: ``images`` (N, S, S, 3) uint8, ``targets`` (N, S, S)
    uint8 (0..255), ``kinds`` (N,) str ("none" for a face without mask), ``keys`` (N,) source file."""

    images: np.ndarray
    targets: np.ndarray
    kinds: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def save(self, path: str | os.PathLike) -> None:
        save_npz(path, images=self.images, targets=self.targets, kinds=self.kinds, keys=self.keys)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SegBank:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"], z["targets"], z["kinds"], z["keys"])


def _resize_landmarks(lm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Pixel-index coordinates at ``src`` x ``src`` -> at ``dst`` x ``dst`` (pixel centres at +0.5)."""
    return (np.asarray(lm, np.float64) + 0.5) * (dst / src) - 0.5


def aligned_landmarks(
    root: str | os.PathLike, cache_path: str | os.PathLike, *, size: int = 256, probe: int = 24
) -> dict[str, np.ndarray]:
    """68 landmarks of every aligned face below ``root`` (at ``size`` px), cached like
    :func:`unmasked.data.face_masks.landmarks_cache` (same ``.npz`` layout) but ~10x cheaper.

    In an FFHQ-aligned folder the face sits in nearly the same square in every image, so the
    HOG detector runs on ``probe`` images only, and dlib's shape predictor is run on every image
    from their median box (the predictor is a cascade refining the mean shape inside the box, and
    tolerates the ~10 % box error this leaves). On a shared 2-core CPU: ~10 ms per face instead of
    ~100+ ms for detection with fallbacks.
    """
    root, cache_path = Path(root), Path(cache_path)
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            if int(z["size"]) == size:
                return {str(p): lm for p, lm in zip(z["paths"], z["landmarks"], strict=True)}
    paths = list_images(root)

    def rgb_of(p: Path) -> np.ndarray:
        rgb = load_image(p).rgb
        return rgb if rgb.shape[:2] == (size, size) else cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)

    boxes = [f[0].box for p in paths[:: max(1, len(paths) // probe)] if (f := detect_faces(rgb_of(p), detector="hog"))]
    if not boxes:
        raise ValueError(f"no face found in {probe} probe images of {root}: is it an aligned face folder?")
    box = tuple(int(v) for v in np.median(np.array(boxes), axis=0))
    result = {p.relative_to(root).as_posix(): face_from_box(rgb_of(p), box, refine=False).landmarks for p in paths}
    keys = sorted(result)
    save_npz(cache_path, paths=np.array(keys, dtype=str), size=np.array(size), missing=np.array([], dtype=str),
             landmarks=np.array([result[k] for k in keys], dtype=np.float32).reshape(-1, 68, 2))
    return result


def under_mask_landmarks(
    root: str | os.PathLike, cache_path: str | os.PathLike, exact: dict[str, np.ndarray], *, size: int = 256,
    variants: int = 2, seed: int = 0,
) -> dict[str, np.ndarray]:
    """FaceMesh's guess of each aligned face's 68 landmarks while it wears a synthetic worn mask,
    made as ``unmask`` makes the guide of a landmark-guided model: float32 (``variants``, 68, 2) per
    image below ``root``, in its pixels at ``size``; a row of NaN where no face was found.

    Each variant puts one worn mask (MaskTheFace method, random template, colour and print, on the
    ``exact`` landmarks of :func:`aligned_landmarks`) on the face, runs the detector on the masked
    photo, aligns it at :data:`~unmasked.data.landmark_guide.UNDER_MASK_SIZE`, corrects the guess by
    :func:`~unmasked.data.landmark_guide.unmasked_guess` and maps it back to the photo. Trained on
    these, the model's guide is no more exact in training than in use. Cached like
    :func:`aligned_landmarks` (~50 ms a variant on a shared 2-core CPU: ~8 minutes for 5,094 photos x 2).
    """
    root, cache_path = Path(root), Path(cache_path)
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            if (int(z["size"]), int(z["variants"]), int(z["seed"])) == (size, variants, seed):
                return {str(p): lm for p, lm in zip(z["paths"], z["landmarks"], strict=True)}
    keys = sorted(p.relative_to(root).as_posix() for p in list_images(root))
    missing = [k for k in keys if k not in exact]
    if missing:
        raise ValueError(f"{len(missing)} images of {root} have no exact landmarks (e.g. {missing[0]})")
    out = np.full((len(keys), variants, 68, 2), np.nan, np.float32)
    for i, key in enumerate(keys):
        rgb = load_image(root / key).rgb
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        for v in range(variants):
            masked, _ = face_mask_for_aligned(size, np.random.default_rng([seed, i, v]), image=rgb,
                                              landmarks=exact[key], variety=True)
            faces = detect_faces(masked)
            if not faces:
                continue
            aligned = align_face(masked, faces[0], UNDER_MASK_SIZE)
            back = cv2.invertAffineTransform(np.asarray(aligned.matrix, np.float64))
            guess = unmasked_guess(aligned.landmarks, UNDER_MASK_SIZE)
            out[i, v] = transform_points(back, guess)
    save_npz(cache_path, paths=np.array(keys, dtype=str), size=np.array(size), variants=np.array(variants),
             seed=np.array(seed), landmarks=out)
    return dict(zip(keys, out, strict=True))


def synthetic_bank(
    root: str | os.PathLike,
    split: str,
    *,
    landmarks: dict[str, np.ndarray] | None = None,
    landmarks_size: int = 256,
    templates=None,
    variants: int = 2,
    seed: int = 0,
    size: int = BANK_SIZE,
    val_fraction: float = 0.2,
    limit: int | None = None,
    variety: bool = False,
) -> SegBank:
    """Faces of ``split`` ("train" / "val") below ``root`` (``<identity>/<image>``), each once without
    a mask and ``variants`` times with one: even variants procedural (random kind), odd variants a
    random MaskTheFace template (procedural again without ``templates``). ``variety``: recolour or
    pattern most masks (:func:`unmasked.masks.face_mask.random_restyle`: dark and neutral colours,
    the template folder's textures), as real masks are.

    ``landmarks``: {relative posix path: (68, 2) at ``landmarks_size`` px} from
    :func:`unmasked.data.face_masks.landmarks_cache`; faces without an entry use the jittered mean
    aligned face. Sample ``i`` of face ``k`` draws from ``default_rng([seed, k, i])``.
    """
    root = Path(root)
    paths = [p for ident, ps in scan_identities(root).items() if identity_split(ident, val_fraction) == split for p in ps]
    if limit is not None:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    if not paths:
        raise ValueError(f"no faces in split {split!r} of {root}")
    n = len(paths) * (1 + variants)
    images = np.empty((n, size, size, 3), np.uint8)
    targets = np.zeros((n, size, size), np.uint8)
    kinds: list[str] = []
    keys: list[str] = []
    j = 0
    for k, path in enumerate(paths):
        rgb = load_image(path).rgb
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        key = path.relative_to(root).as_posix()
        lm = None if landmarks is None or key not in landmarks else _resize_landmarks(landmarks[key], landmarks_size, size)
        images[j] = rgb
        kinds.append("none")
        keys.append(key)
        j += 1
        for i in range(variants):
            rng = np.random.default_rng([seed, k, i])
            use_templates = templates if i % 2 == 1 else None
            masked, hole = face_mask_for_aligned(size, rng, image=rgb, landmarks=lm, kind="random", templates=use_templates,
                                                 variety=variety)
            images[j], targets[j] = masked, hole.astype(np.uint8) * 255
            kinds.append("template" if use_templates is not None else "procedural")
            keys.append(key)
            j += 1
    return SegBank(images, targets, np.array(kinds), np.array(keys))


def mfn_split(key: str) -> str:
    """"train" or "val" for a MaskedFace-Net file key such as ``CWM/00003`` (fixed 20 % held out)."""
    return identity_split(key, MFN_VAL_FRACTION, seed=0)


def mfn_files(root: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """(key, image path, label path) for every labelled MaskedFace-Net image below ``root``."""
    root = Path(root)
    out = []
    for sub in ("CWM", "IWM"):
        for img in sorted((root / sub / "images").glob("*.jpg")):
            label = root / sub / "labels" / f"{img.stem}.png"
            if label.is_file():
                out.append((f"{sub}/{img.stem}", img, label))
    if not out:
        raise FileNotFoundError(f"no MaskedFace-Net <CWM|IWM>/images + labels found below {root}")
    return out


def warp_label(label: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Coverage (0..255 uint8, (size, size)) of a bool label (H, W) under the alignment ``matrix``.

    The label is supersampled 4x so each crop pixel gets the fraction of its area the mask covers.
    Outside the photo the label is reflected like the aligned image (its padding is reflected too),
    so reflected fabric is labelled as fabric."""
    f = 4
    big = cv2.resize(label.astype(np.uint8) * 255, None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST)
    # big pixel q is original pixel p = q / f + (0.5 / f - 0.5); crop pixel c = A p + t sits at
    # r = f c + (f - 1) / 2 in the f-times crop, so r = A q + f (A (0.5 / f - 0.5) + t) + (f - 1) / 2
    a, t = matrix[:, :2], matrix[:, 2]
    offset = f * (a @ np.full(2, 0.5 / f - 0.5) + t) + (f - 1) / 2
    m_big = np.hstack([a, offset[:, None]])
    warped = cv2.warpAffine(big, m_big, (size * f, size * f), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_REFLECT_101)
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


def mfn_bank(root: str | os.PathLike, size: int = BANK_SIZE, *, detector: str = "auto") -> tuple[SegBank, dict]:
    """Every MaskedFace-Net photo aligned at ``size``, with the label's mask coverage.

    Returns ``(bank, extra)``: ``bank.kinds`` holds each file's split ("train"/"val"), ``extra`` the
    alignment ``matrices`` (N, 2, 3), ``landmarks`` (N, 68, 2) in crop pixels and ``missed``, the
    keys of photos without a detected face (left out of the bank)."""
    images, targets, splits, keys, matrices, lms, missed = [], [], [], [], [], [], []
    for key, img_path, label_path in mfn_files(root):
        rgb = load_image(img_path).rgb
        faces = detect_faces(rgb, detector=detector)
        if not faces:
            missed.append(key)
            continue
        aligned = align_face(rgb, faces[0], size)
        label = np.asarray(Image.open(label_path)) == MFN_LABEL_MASK
        images.append(aligned.image)
        targets.append(warp_label(label, aligned.matrix, size))
        splits.append(mfn_split(key))
        keys.append(key)
        matrices.append(aligned.matrix)
        lms.append(aligned.landmarks)
    bank = SegBank(np.stack(images), np.stack(targets), np.array(splits), np.array(keys))
    extra = {"matrices": np.stack(matrices), "landmarks": np.stack(lms), "missed": np.array(missed, dtype=str)}
    return bank, extra


def cached(path: str | os.PathLike, build, *args, **kwargs):
    """``build(*args, **kwargs)`` -> SegBank (or (SegBank, dict of arrays)), kept in ``path`` (.npz)."""
    path = Path(path)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            bank = SegBank(z["images"], z["targets"], z["kinds"], z["keys"])
            extra = {k[6:]: z[k] for k in z.files if k.startswith("extra_")}
        return (bank, extra) if extra else bank
    result = build(*args, **kwargs)
    bank, extra = result if isinstance(result, tuple) else (result, {})
    save_npz(path, images=bank.images, targets=bank.targets, kinds=bank.kinds, keys=bank.keys,
             **{f"extra_{k}": v for k, v in extra.items()})
    return result
