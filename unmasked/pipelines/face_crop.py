"""Filling the part of a hole that lies on a face, in the face's aligned crop.

Shared by ``auto`` (:mod:`unmasked.pipelines.auto`), reference-guided filling
(:mod:`unmasked.pipelines.reference`) and, through the same alignment, ``unmask``: the face
models are trained on FFHQ-style aligned crops (Karras et al., 2019), so a hole on a face in a
photo is filled by aligning the face at the model's working size, filling there and warping
the fill back (:func:`fill_in_face`); :func:`faces_at_hole` finds the faces a hole touches.
"""

from __future__ import annotations

import cv2
import numpy as np

from unmasked.faces import align_face, detect_faces
from unmasked.faces.align import scale_of
from unmasked.models.base import InpaintModel
from unmasked.pipelines.fill import InputError, blend_with_classical, run_model


def face_zone(face, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): ``face``'s box enlarged by half (a quarter on each side: hair, ears,
    chin), clipped to an image of ``shape`` (H, W)."""
    h, w = shape
    x, y, bw, bh = face.box
    return (int(max(0, x - bw / 4)), int(max(0, y - bh / 4)), int(min(w, x + bw * 1.25)), int(min(h, y + bh * 1.25)))


def faces_at_hole(rgb: np.ndarray, hole: np.ndarray, detector: str = "blazeface", min_score: float | None = None,
                  upsample: int = 1, faces: list | None = None) -> list:
    """Detected faces whose :func:`face_zone` holds hole pixels; most hole pixels first.
    ``min_score``: drop faces with a smaller detector margin. ``faces``: faces already detected
    in ``rgb`` (then no detector runs)."""
    found = []
    if faces is None:
        faces = detect_faces(rgb, detector=detector, upsample=upsample)
    for face in faces:
        x0, y0, x1, y1 = face_zone(face, hole.shape)
        count = int(hole[y0:y1, x0:x1].sum())
        if count and (min_score is None or not face.score < min_score):
            found.append((count, face))
    found.sort(key=lambda item: -item[0])
    return [face for _, face in found]


def fill_in_face(image: np.ndarray, hole: np.ndarray, face, model: InpaintModel,
                 reference: np.ndarray | None = None) -> np.ndarray:
    """Fill the pixels of ``hole`` that lie in ``face``'s aligned crop, in place in ``image``.

    ``image`` uint8 (H, W, 3) is modified; ``hole`` bool (H, W); ``face`` a detected
    :class:`~unmasked.faces.Face`. The face is aligned at ``model.working_size`` (128 if the
    model has none), the warped hole filled by ``model`` (with ``reference``, an aligned face
    crop, for a reference-guided model), and the fill warped back; a model with a
    ``classical_blend`` is blended again at the photo's resolution when the face is larger
    than the crop (a thin hole then keeps the sharp diffusion fill). Returns bool (H, W): the hole
    pixels replaced (none when the hole misses the crop). Raises
    :class:`~unmasked.pipelines.fill.InputError` when the hole covers the whole crop.
    """
    size = model.working_size or 128
    aligned = align_face(image, face, size)
    hole_aligned = cv2.warpAffine(hole.astype(np.float32), aligned.matrix, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    if not hole_aligned.any():
        return np.zeros_like(hole, dtype=bool)
    if hole_aligned.all():
        raise InputError("the hole covers the whole face crop: there is nothing left of the face to fill from")
    filled = run_model(model, aligned.image, hole_aligned, reference)
    h, w = hole.shape
    inverse = cv2.invertAffineTransform(aligned.matrix)
    back = cv2.warpAffine(filled, inverse, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    blend = getattr(model, "classical_blend", None)
    scale = 1.0 / scale_of(aligned.matrix)  # photo pixels per crop pixel
    if blend and scale > 1.0:
        # the model blended at the crop's resolution; a face larger than the crop gets that
        # blend again at the photo's own resolution, as wide in the photo as it was in the crop
        back = blend_with_classical(image, hole, back, blend["method"], blend["width"] * scale)
    inside = cv2.warpAffine(np.ones((size, size), np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    sel = hole & inside
    image[sel] = back[sel]
    return sel
