"""Synthetic worn face masks on real faces: the MaskTheFace method.

Anwar & Raychowdhury, "Masked Face Recognition for Secure Authentication", arXiv:2008.11104,
2020 (the MaskTheFace tool, MIT licence; this is an independent implementation). A mask
template is an RGBA picture annotated with six key points; the same six points are found on
the face from its 68 landmarks, a homography maps one set onto the other, and the warped
template is composited onto the photo. Here the composite is a hard one, so the hole mask is
exact: ``hole = warped alpha > 0.5`` and the output differs from the input only there.

The six key points and the head's turn come from :mod:`unmasked.faces.landmarks`; the templates
(MaskTheFace's folders, restyled, or drawn procedurally) from :mod:`unmasked.masks.templates`.
Whole folders of photos are masked by :func:`unmasked.data.face_masks.mask_folder`.

Brightness follows MaskTheFace: the template's HSV value channel is multiplied by
``1 + (face V - template V) / 255`` (means over the face region and the template's opaque
pixels), so a white mask dims in a dark photo.

Measured on FFHQ-aligned 128 x 128 CelebA faces: the hole covers 6-33 % of the crop (means by
type 0.11-0.16, MaskTheFace's gas mask 0.22); placed on landmarks detected on MaskedFace-Net
photos, a surgical mask overlaps their labelled mask with IoU ~0.7-0.76.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from unmasked.faces.landmarks import FFHQ_MEAN_LANDMARKS, head_tilt, jittered_mean_landmarks, six_points
from unmasked.masks.procedural import PROCEDURAL_KINDS, procedural_template
from unmasked.masks.templates import Template, TemplateSet, random_restyle, restyle_template

__all__ = ["FFHQ_MEAN_LANDMARKS", "PROCEDURAL_KINDS", "Template", "TemplateSet", "face_mask_for_aligned",
           "jittered_mean_landmarks", "put_face_mask", "put_face_masks", "six_points"]


# --------------------------------------------------------------------------- putting a mask on a face


def _landmarks_of(face) -> np.ndarray:
    """(68, 2) landmarks from a :class:`unmasked.faces.Face` or an array."""
    lm = np.asarray(getattr(face, "landmarks", face), dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected a Face or 68 landmarks of shape (68, 2), got {lm.shape}")
    return lm


def _face_brightness(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean HSV value (0..255) inside the convex hull of the landmarks."""
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(landmarks.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(landmarks.max(axis=0)).astype(int) + 1, 1, [w, h])
    roi = rgb[y0:y1, x0:x1]
    if roi.size == 0:
        return float(rgb.max(axis=2).mean())
    region = np.zeros(roi.shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(landmarks - [x0, y0]).astype(np.int32))
    cv2.fillConvexPoly(region, hull, 1)
    value = roi.max(axis=2)  # HSV V = max(R, G, B)
    return float(value[region > 0].mean()) if region.any() else float(value.mean())


def apply_template(
    rgb: np.ndarray, landmarks: np.ndarray, template: Template, *, match_brightness: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``template`` onto the face with the homography of its six points onto :func:`six_points`.

    Returns ``(masked_rgb uint8 (H, W, 3), hole bool (H, W))``; hole = warped alpha > 0.5, and
    the composite is hard, so ``masked_rgb`` equals ``rgb`` exactly outside ``hole``.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    landmarks = _landmarks_of(landmarks)
    h, w = rgb.shape[:2]
    out, hole = rgb.copy(), np.zeros((h, w), bool)
    dst = six_points(landmarks)
    src = np.asarray(template.points, np.float64)
    tpl = template.rgba
    # a template much larger than its place on the face is shrunk first, so the warp does not alias
    shrink = min(1.0, 2.0 * np.hypot(*(dst[2] - dst[0])) / max(np.hypot(*(src[2] - src[0])), 1e-9))
    if shrink < 0.5:
        th, tw = tpl.shape[:2]
        size = (max(2, round(tw * shrink)), max(2, round(th * shrink)))
        src = (src + 0.5) * [size[0] / tw, size[1] / th] - 0.5
        tpl = cv2.resize(tpl, size, interpolation=cv2.INTER_AREA)
    homography, _ = cv2.findHomography(src.astype(np.float32), dst.astype(np.float32), 0)
    if homography is None or not np.isfinite(homography).all():
        raise ValueError("cannot fit the mask template to these landmarks (degenerate key points)")

    th, tw = tpl.shape[:2]
    corners = np.array([[[0, 0], [tw, 0], [tw, th], [0, th]]], np.float64)
    warped_corners = cv2.perspectiveTransform(corners, homography)[0]
    if not np.isfinite(warped_corners).all():
        return out, hole
    x0, y0 = np.clip(np.floor(warped_corners.min(axis=0)).astype(int) - 1, 0, [w, h])
    x1, y1 = np.clip(np.ceil(warped_corners.max(axis=0)).astype(int) + 2, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return out, hole
    shifted = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ homography
    # premultiplied alpha, so colours of transparent template pixels never bleed into the edge
    a = tpl[..., 3:4].astype(np.float32) / 255.0
    premultiplied = np.dstack([tpl[..., :3].astype(np.float32) * a, a])
    warped = cv2.warpPerspective(premultiplied, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3]
    region = alpha > 0.5
    if not region.any():
        return out, hole
    colour = np.clip(warped[..., :3] / np.maximum(alpha, 1e-6)[..., None], 0, 255).astype(np.uint8)
    if match_brightness:
        hsv = cv2.cvtColor(colour, cv2.COLOR_RGB2HSV).astype(np.float32)
        gain = 1.0 + (_face_brightness(rgb, landmarks) - float(hsv[..., 2][region].mean())) / 255.0
        hsv[..., 2] = np.clip(hsv[..., 2] * gain, 0, 255)
        colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    roi = out[y0:y1, x0:x1]
    roi[region] = colour[region]
    hole[y0:y1, x0:x1] = region
    return out, hole


def _pick_template(kind: str, landmarks: np.ndarray, rng: np.random.Generator, templates: TemplateSet | None) -> Template:
    kind = kind.lower()
    if templates is None:
        if kind == "random":
            kind = str(rng.choice(PROCEDURAL_KINDS))
        if kind not in PROCEDURAL_KINDS:
            raise ValueError(f"unknown mask type {kind!r}; choose from {', '.join(PROCEDURAL_KINDS)}, random "
                             "(or give a template folder)")
        pts = six_points(landmarks)
        width = np.hypot(*(pts[2] - pts[0]))
        return procedural_template(kind, rng, scale=float(np.clip(1.5 * width / 560.0, 0.08, 2.0)))
    if kind == "random":
        kind = str(rng.choice(templates.kinds))
    if kind not in templates.kinds:
        raise ValueError(f"no template {kind!r} in {templates.root}; available: {', '.join(templates.kinds)}, random")
    return templates.get(kind, head_tilt(landmarks)[0])


def put_face_mask(
    rgb: np.ndarray,
    face,
    rng: np.random.Generator,
    *,
    kind: str = "surgical",
    templates: TemplateSet | None = None,
    match_brightness: bool = True,
    colour=None,
    texture=None,
    weight: float = 0.5,
    variety: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Put a synthetic worn mask on ``face`` (a :class:`unmasked.faces.Face` or (68, 2) landmarks).

    Without ``templates``: ``kind`` in surgical, n95, kn95, cloth or random, drawn procedurally.
    With a :class:`TemplateSet`: ``kind`` is one of its :attr:`TemplateSet.kinds` (e.g. surgical,
    surgical_blue, n95, kn95, cloth, gas) or random; the turned variant follows :func:`head_tilt`.
    ``colour`` or ``texture`` restyle the mask at ``weight`` (:func:`restyle_template`; a texture
    "random" picks one of the template folder's textures); ``variety=True`` draws a random
    restyle instead (:func:`random_restyle`, with the folder's textures when there are templates).
    Returns ``(masked_rgb uint8 (H, W, 3), hole bool (H, W))``; outside ``hole`` the image is unchanged.
    """
    landmarks = _landmarks_of(face)
    template = _pick_template(kind, landmarks, rng, templates)
    textures = templates.textures if templates is not None else []
    if isinstance(texture, str) and texture == "random":
        if not textures:
            raise ValueError("texture 'random' needs a template folder with a textures/ subfolder")
        texture = textures[int(rng.integers(0, len(textures)))]
    if colour is not None or texture is not None:
        template = restyle_template(template, colour=colour, texture=texture, weight=weight)
    elif variety:
        template = random_restyle(template, rng, textures)
    return apply_template(rgb, landmarks, template, match_brightness=match_brightness)


def put_face_masks(
    rgb: np.ndarray, faces: Sequence, rng: np.random.Generator, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`put_face_mask` on each face in turn; the hole is the union of their holes."""
    out, hole = np.asarray(rgb).copy(), np.zeros(np.asarray(rgb).shape[:2], bool)
    for face in faces:
        out, h = put_face_mask(out, face, rng, **kwargs)
        hole |= h
    return out, hole



def face_mask_for_aligned(
    size: int,
    rng: np.random.Generator,
    *,
    image: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    kind: str = "random",
    templates: TemplateSet | None = None,
    jitter: float = 1.0,
    variety: bool = False,
) -> tuple[np.ndarray | None, np.ndarray]:
    """A worn-mask hole for an FFHQ-aligned ``size`` x ``size`` crop, without running dlib.

    ``landmarks`` (68, 2) in crop pixels, e.g. from :func:`unmasked.data.face_masks.landmarks_cache`; without them the
    mean aligned face is used, jittered by :func:`jittered_mean_landmarks`. With ``image``
    (uint8 (size, size, 3)) returns ``(masked image, hole)``; without, ``(None, hole)``.
    ``variety``: random colours and textures (:func:`random_restyle`); the hole is the same either way.
    """
    if landmarks is None:
        landmarks = jittered_mean_landmarks(size, rng, jitter)
    canvas = image if image is not None else np.full((size, size, 3), 128, np.uint8)
    if canvas.shape[:2] != (size, size):
        raise ValueError(f"image must be ({size}, {size}, 3), got {canvas.shape}")
    masked, hole = put_face_mask(canvas, landmarks, rng, kind=kind, templates=templates,
                                 match_brightness=image is not None, variety=variety and image is not None)
    return (masked if image is not None else None), hole
