"""Remove worn face masks from a photo: find each face, find the mask region, fill, paste back.

For every face (dlib detection with fallbacks, or a user-given box): align it FFHQ-style at the
model's working size, estimate the region a worn mask covers, fill that region with the face
model, and blend the filled pixels back into the photo over the region only; pixels away
from the faces are returned byte for byte.

The mask region here is a **landmark heuristic**: the polygon through MaskTheFace's six key
points (nose bridge, cheeks, jaw, chin; Anwar & Raychowdhury 2020), grown by a margin so no
fabric is left at the edge. It covers where a worn mask sits whatever its colour, but also
fills an unmasked lower face. A learned mask segmenter replaces it in a later release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from unmasked.models.base import InpaintModel
from unmasked.pipelines.fill import fill_array, validate_image


@dataclass
class UnmaskedFace:
    """One processed face: its box in the photo, how it was found, and its hole in the aligned crop."""

    box: tuple[int, int, int, int]
    detector: str
    hole_ratio: float


@dataclass
class UnmaskResult:
    image: np.ndarray  # uint8 (H, W, 3)
    faces: list[UnmaskedFace] = field(default_factory=list)
    region: np.ndarray | None = None  # bool (H, W): pixels that were filled (blend weight > 0)
    note: str | None = None


def worn_mask_region(landmarks: np.ndarray, size: int, grow: float = 0.05) -> np.ndarray:
    """bool (size, size): the area a worn mask covers, from 68 landmarks in crop pixels.

    The polygon a-b-c-f-e-d through MaskTheFace's six key points with its top edge lifted a
    fifth of the way toward the eyes, dilated by ``grow`` x size.
    """
    from unmasked.masks.face_mask import six_points

    a, b, c, d, e, f = six_points(landmarks)
    # masks ride higher than MaskTheFace's template line, up the nose and over the cheekbones:
    # lift the top edge a fifth of the way toward the eye line (more starts to cover the eyelids)
    eyes = (landmarks[36:42].mean(axis=0) + landmarks[42:48].mean(axis=0)) / 2
    lift = (eyes - b) / 5
    a, b, c = a + lift, b + lift, c + lift
    region = np.zeros((size, size), np.uint8)
    cv2.fillPoly(region, [np.round(np.stack([a, b, c, f, e, d])).astype(np.int32)], 1)
    r = max(1, round(grow * size))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return region.astype(bool)


def unmask_array(
    rgb: np.ndarray,
    model: InpaintModel,
    *,
    boxes: Sequence[tuple[int, int, int, int]] | None = None,
    detector: str = "auto",
    grow: float = 0.05,
) -> UnmaskResult:
    """Restore every masked face of ``rgb`` (uint8 (H, W, 3)) with ``model``.

    ``boxes`` (x, y, w, h) skip detection (for faces the detector misses). Raises
    ``ValueError`` for bad boxes; a photo without a detectable face is returned unchanged with
    a note.
    """
    from unmasked.faces import align_face, detect_faces, face_from_box, paste_back

    validate_image(rgb)
    h, w = rgb.shape[:2]
    if boxes:
        for x, y, bw, bh in boxes:
            if bw <= 0 or bh <= 0 or x < 0 or y < 0 or x + bw > w or y + bh > h:
                raise ValueError(f"box {x},{y},{bw},{bh} (x,y,w,h) lies outside the {w}x{h} image")
        faces = [face_from_box(rgb, tuple(b)) for b in boxes]
    else:
        faces = detect_faces(rgb, detector=detector)
    if not faces:
        return UnmaskResult(rgb.copy(), note="no face found: give the face square with --box x,y,w,h")

    size = model.working_size or 128
    out = rgb.copy()
    done = []
    for face in faces:
        aligned = align_face(out, face, size)
        hole = worn_mask_region(aligned.landmarks, size, grow)
        filled = fill_array(aligned.image, hole, model).image
        out = paste_back(out, filled, hole, aligned.matrix)
        done.append(UnmaskedFace(tuple(int(v) for v in face.box), face.detector, float(hole.mean())))
    region = np.any(out != rgb, axis=2)
    return UnmaskResult(out, done, region)
