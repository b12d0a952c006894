"""Reference photos for reference-guided filling (Two-Face): align a given one, or retrieve one from a gallery.

A reference-guided model (``model.uses_reference``, e.g. ``two_face``) wants a second photo of
the same person as an FFHQ-aligned face crop at its working size, like the face it fills.

* :func:`aligned_reference`: the largest face of a photo (or the face in a given square, as the
  Two-Face web app lets one draw it on the reference), aligned (a clear error without one).
* :class:`Gallery`: a folder of photos (flat, or ``<identity>/<photo>`` sub-folders; a flat
  file is its own identity) embedded once with an identity embedder into a cached index next
  to the photos. The default embedder is dlib's descriptor (a dependency that ships; ROC-AUC
  0.992 on held-out CelebA pairs, against 0.834 for the project's own ``face_identity``) with
  its threshold at a 1 % false-accept rate on those pairs, cosine 0.91. :meth:`Gallery.match`
  takes the face to be filled (best first filled *without* a reference, so the worn mask does
  not dominate its embedding), finds the closest identity by the cosine similarity to the mean
  of its photos' embeddings, and returns that identity's photo closest to the face, with the
  similarity, or ``None`` when the similarity is below the threshold (then the plain model
  is used).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from unmasked.conventions import ImageReadError, image_to_tensor, load_image
from unmasked.data.datasets import list_images
from unmasked.faces import align_face, detect_faces, face_from_box
from unmasked.faces.descriptor import DlibEmbedder
from unmasked.pipelines.face_crop import faces_at_hole, fill_in_face
from unmasked.pipelines.fill import FillResult, InputError, check_box, fill_array, validate_image

CACHE_NAME = ".unmasked_gallery.npz"
#: dlib descriptor cosine similarity at a 1 % false-accept rate on held-out CelebA identity pairs
#: (README, "Face identity"): below it a gallery face is not taken for the same person
DLIB_THRESHOLD = 0.91


def _largest_face(rgb: np.ndarray, detector: str = "blazeface"):
    faces = detect_faces(rgb, detector=detector)  # largest first
    return faces[0] if faces else None


def aligned_reference(rgb: np.ndarray, size: int, *, detector: str = "blazeface",
                      box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """uint8 (size, size, 3): the largest face of ``rgb`` (uint8 (H, W, 3)), FFHQ-aligned.

    ``box`` (x, y, w, h): the face square on the reference photo (a group photo, or a face the
    detector misses); the face inside it is aligned instead of the largest one. Raises
    ``ValueError`` when the photo holds no detectable face, or for a box outside the photo.
    """
    if box is not None:
        check_reference_box(box, rgb.shape[:2])
        return align_face(rgb, face_from_box(rgb, tuple(box)), size).image
    face = _largest_face(rgb, detector)
    if face is None:
        raise InputError("no face found in the reference photo: give a photo where the person's face is visible, "
                         "or its face square")
    return align_face(rgb, face, size).image


def check_reference_box(box, shape: tuple[int, int]) -> None:
    """:class:`~unmasked.pipelines.fill.InputError` unless the face square ``box`` (x, y, w, h) lies
    inside a reference photo of ``shape`` (H, W)."""
    check_box(box, shape, "reference face square", "reference photo")


@dataclass
class GalleryMatch:
    """The retrieved reference: ``path`` of the photo, its ``identity``, cosine ``similarity`` to the query."""

    path: Path
    identity: str
    similarity: float
    face: np.ndarray  # uint8 (S, S, 3), the aligned face of that photo at the gallery's size

    @property
    def distance(self) -> float:
        """Cosine distance ``1 - similarity``."""
        return 1.0 - self.similarity


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


class Gallery:
    """Embedded faces of a folder of photos; see the module docstring.

    ``threshold``: the least cosine similarity to accept a match (default: :data:`DLIB_THRESHOLD`
    for dlib, else the embedder's ``threshold_far1`` metadata, else 0.5).
    """

    def __init__(self, root: Path, paths: list[str], identities: list[str], embeddings: np.ndarray,
                 faces: np.ndarray, embedder, threshold: float | None = None) -> None:
        self.root, self.paths, self.identities = root, paths, identities
        self.embeddings, self.faces, self.embedder = embeddings, faces, embedder
        if threshold is None:
            meta = getattr(embedder, "checkpoint_metadata", None) or {}
            threshold = DLIB_THRESHOLD if getattr(embedder, "name", "") == "dlib" else meta.get("threshold_far1", 0.5)
        self.threshold = float(threshold)

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def build(cls, root: str | os.PathLike, *, embedder=None, size: int = 128, cache: str | os.PathLike | None = None,
              threshold: float | None = None, detector: str = "blazeface") -> Gallery:
        """Embed every photo below ``root`` (cached in ``root/.unmasked_gallery.npz`` or ``cache``).

        Photos without a detectable face are skipped; only new or changed files are embedded
        again. Raises ``ValueError`` when no photo of the folder shows a face.
        """
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"gallery folder not found: {root}")
        embedder = embedder if embedder is not None else DlibEmbedder()
        cache = Path(cache) if cache is not None else root / CACHE_NAME
        key = json.dumps({"embedder": getattr(embedder, "name", "?"), "size": size})
        old: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    old = {p: (f, e, im) for p, f, e, im in zip(z["paths"], z["fingerprints"], z["embeddings"],
                                                               z["faces"], strict=True)}
        paths, prints, embs, faces, skipped = [], [], [], [], []
        for path in list_images(root):
            rel = path.relative_to(root).as_posix()
            fp = _fingerprint(path)
            if rel in old and old[rel][0] == fp:
                emb, crop = old[rel][1], old[rel][2]
            else:
                try:
                    rgb = load_image(path).rgb
                except ImageReadError:
                    skipped.append(rel)
                    continue
                face = _largest_face(rgb, detector)
                if face is None:
                    skipped.append(rel)
                    continue
                crop = align_face(rgb, face, size).image
                with torch.no_grad():
                    emb = embedder.embed(image_to_tensor(crop))[0].numpy()
            paths.append(rel)
            prints.append(fp)
            embs.append(np.asarray(emb, np.float32))
            faces.append(crop)
        if not paths:
            raise ValueError(f"no face found in any photo of the gallery {root}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, key=np.array(key), paths=np.array(paths), fingerprints=np.array(prints),
                 embeddings=np.stack(embs), faces=np.stack(faces))
        os.replace(tmp, cache)
        identities = [p.split("/")[0] if "/" in p else Path(p).stem for p in paths]
        gallery = cls(root, paths, identities, np.stack(embs), np.stack(faces), embedder, threshold)
        gallery.skipped = skipped
        return gallery

    def embed(self, face: np.ndarray) -> np.ndarray:
        """(D,) unit embedding of an aligned uint8 face crop."""
        with torch.no_grad():
            return self.embedder.embed(image_to_tensor(face))[0].numpy()

    def match(self, face: np.ndarray, *, exclude: str | None = None) -> GalleryMatch | None:
        """The best reference for the aligned face ``face`` (uint8 (S, S, 3)), or None below the threshold.

        ``exclude``: a gallery path (relative) never to return, e.g. the photo being filled.
        """
        query = self.embed(face)
        keep = np.array([p != exclude for p in self.paths])
        if not keep.any():
            return None
        identities = np.array(self.identities)
        sims = self.embeddings @ query
        best_sim, best_rows = -2.0, None
        for name in np.unique(identities[keep]):
            rows = np.flatnonzero(keep & (identities == name))
            centre = self.embeddings[rows].mean(axis=0)
            sim = float(query @ centre / max(np.linalg.norm(centre), 1e-8))
            if sim > best_sim:
                best_sim, best_rows = sim, rows
        if best_sim < self.threshold:
            return None
        j = int(best_rows[np.argmax(sims[best_rows])])
        best_name = self.identities[j]
        return GalleryMatch(self.root / self.paths[j], best_name, float(sims[j]), self.faces[j])



def _face_for_hole(rgb: np.ndarray, hole: np.ndarray, detector: str):
    """The detected face whose (1.5x enlarged) box holds most hole pixels, or None."""
    faces = faces_at_hole(rgb, hole, detector)
    return faces[0] if faces else None


def fill_with_reference(
    rgb: np.ndarray,
    hole: np.ndarray,
    model,
    reference: np.ndarray,
    *,
    reference_is_aligned: bool = False,
    box: tuple[int, int, int, int] | None = None,
    reference_box: tuple[int, int, int, int] | None = None,
    detector: str = "blazeface",
):
    """Fill ``hole`` of a photo of a face with a reference-guided model and a photo of the same person.

    ``rgb`` uint8 (H, W, 3), ``hole`` bool (H, W); ``reference`` uint8: a photo (its largest
    face is aligned, or the face in its square ``reference_box`` = x, y, w, h) or, with
    ``reference_is_aligned``, an aligned (S, S, 3) face crop (e.g.
    :attr:`GalleryMatch.face`). The whole hole is first filled by the model without the
    reference (:func:`~unmasked.pipelines.fill.fill_array`); then the face the hole lies on
    (detected, or given as ``box`` = x, y, w, h) is aligned at the model's working size, filled
    again *with* the reference, and its hole pixels replace the plain fill. Pixels outside the
    hole keep their exact bytes. Returns a :class:`~unmasked.pipelines.fill.FillResult`
    whose note says whether the reference was used.
    """
    if not getattr(model, "uses_reference", False):
        raise InputError(f"model {getattr(model, 'config', {}).get('name', type(model).__name__)!r} "
                         "does not use a reference photo")
    validate_image(reference)
    size = model.working_size
    if reference_is_aligned:
        if reference_box is not None:
            raise InputError("a reference face square needs the reference photo, not an aligned crop")
        if reference.shape[:2] != (size, size):
            reference = cv2.resize(reference, (size, size), interpolation=cv2.INTER_AREA)
        ref_face = reference
    else:
        ref_face = aligned_reference(reference, size, detector=detector, box=reference_box)
    base = fill_array(rgb, hole, model)  # validates; the plain fill everywhere first
    hole = hole.astype(bool)
    if not hole.any():
        return base
    face = face_from_box(rgb, box) if box is not None else _face_for_hole(rgb, hole, detector)
    if face is None:
        return FillResult(base.image, note="no face found at the hole: filled without the reference",
                          regions=base.regions)
    out = base.image.copy()
    sel = fill_in_face(out, hole, face, model, ref_face)
    if not sel.any():
        return FillResult(base.image, note="the hole is outside the face: filled without the reference",
                          regions=base.regions)
    return FillResult(out, note=f"filled with the reference photo ({int(sel.sum())} of {int(hole.sum())} hole pixels"
                                " inside the aligned face)", regions=base.regions)


def match_in_gallery(rgb: np.ndarray, hole: np.ndarray, model, gallery: Gallery, *, detector: str = "blazeface",
                     exclude: str | None = None) -> GalleryMatch | None:
    """The gallery's best reference for the face at ``hole`` of ``rgb``, or None.

    The face is embedded after a plain fill by ``model`` (without a reference), so the hole's
    content (a worn mask, a blank) does not steer the search.
    """
    base = fill_array(rgb, hole, model)
    face = _face_for_hole(base.image, hole.astype(bool), detector)
    if face is None:
        return None
    return gallery.match(align_face(base.image, face, gallery.faces.shape[1]).image, exclude=exclude)
