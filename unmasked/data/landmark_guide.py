"""A drawing of a face's 68 landmarks, the guide of a landmark-guided face fill.

Where the mouth lies under a worn mask is not in the pixels around it, so a fill network trained
with pixel losses paints the mean over where it could be (a smear) and one trained adversarially
paints several (stacked mouths, horizontal bands). LaFIn (Yang, Qi & Shi, "LaFIn: Generative
Landmark Guided Face Inpainting", arXiv:1911.11394, 2019) removes that ambiguity by giving the
inpainting network the face's landmarks. Here they come from FaceMesh, whose whole-head fit
places the hidden mouth and jaw from the head's pose (:mod:`unmasked.faces`); the network sees
them as a line drawing, one channel, as DeepFill v2's user-guided mode sees a sketch: the jaw,
brows, nose, eyes and both lip contours, 1 px wide and anti-aliased (:func:`draw_landmark_guide`).

Training draws the landmarks of the *unmasked* face, moved the way FaceMesh's guess under a mask
is off (:func:`jitter_landmarks`: the whole drawing by a small similarity transform, the mouth
and jaw by a little more), so the network learns to follow the drawing without trusting it to
the pixel.

A second kind of guide (``guide_kind="mean_face"``, :func:`mean_face_guide`) shows the network the
shipped mean face warped onto the same points: where its luminance detail is dark (the lips' line,
nostrils, eye contours, chin shadow), the structure ``unmask --mean-face`` pastes in, given to the
network as soft lines to follow with its own texture instead.
"""

from __future__ import annotations

import cv2
import numpy as np

from unmasked.faces.landmarks import mouth_opening  # noqa: F401  (it lived here; still importable from here)
from unmasked.faces.mean_face import STRUCTURE_SIGMA, shipped_mean_face, warp_by_landmarks
from unmasked.models.pconv_unet import GUIDE_KINDS

#: the iBUG-68 contours drawn, as (first, last, closed)
CONTOURS = (
    (0, 16, False),  # jaw
    (17, 21, False), (22, 26, False),  # brows
    (27, 30, False), (31, 35, False),  # nose bridge, nostrils
    (36, 41, True), (42, 47, True),  # eyes
    (48, 59, True), (60, 67, True),  # outer and inner lips
)
#: landmarks of the lower face (jaw, nostrils, lips), which FaceMesh guesses under a worn mask
LOWER = np.r_[0:17, 31:36, 48:68]
#: sub-pixel precision of the drawing (cv2 ``shift``)
_SHIFT = 4
#: the mean face guide is its luminance detail's dark part / this (grey levels), clipped to [0, 1]
MEAN_FACE_GUIDE_RANGE = 32.0


def draw_landmark_guide(landmarks: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """float32 (H, W) in [0, 1]: the contours of 68 landmarks (x, y in pixels of an image of
    ``size`` = (H, W), or an int for a square), anti-aliased lines 1 px wide per 128 px of the
    shorter side (1 px at 128², 2 px at 256²: the same drawing at any working size); what lies
    outside the image is clipped by the drawing."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be finite (68, 2), got {lm.shape}")
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    canvas = np.zeros((h, w), np.uint8)
    fixed = np.round(lm * (1 << _SHIFT)).astype(np.int32)
    thickness = max(1, round(min(h, w) / 128))
    for first, last, closed in CONTOURS:
        cv2.polylines(canvas, [fixed[first:last + 1]], closed, 255, thickness, cv2.LINE_AA, _SHIFT)
    return canvas.astype(np.float32) / 255.0


def jitter_landmarks(landmarks: np.ndarray, rng: np.random.Generator, size: int, *, shift: float = 0.012,
                     scale: float = 0.02, angle: float = 2.0, lower: float = 0.012) -> np.ndarray:
    """``landmarks`` (68, 2) moved as FaceMesh's guess under a worn mask may be: a similarity
    transform about the crop's centre (translation with standard deviation ``shift`` x ``size``,
    scale 1 +- ``scale``, rotation +- ``angle`` degrees, all normal), then the lower face
    (:data:`LOWER`) shifted once more by ``lower`` x ``size``."""
    lm = np.asarray(landmarks, np.float64)
    c = (size - 1) / 2.0
    a = np.deg2rad(rng.normal(0.0, angle))
    s = 1.0 + rng.normal(0.0, scale)
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    out = (lm - c) @ rot.T + c + rng.normal(0.0, shift * size, 2)
    out[LOWER] += rng.normal(0.0, lower * size, 2)
    return out


#: the crop side (px) at which :data:`UNDER_MASK_OFFSET` was measured
UNDER_MASK_SIZE = 128
#: (68, 2) px at 128: the median displacement of FaceMesh's points on a face wearing a synthetic
#: worn mask from its points on the same face unmasked, in the masked face's aligned crop, over 377
#: faces of training identities (``python benchmarks/landmarks_under_mask.py --fit``). Under a
#: mask FaceMesh puts the nose 2-3 px, the mouth 3-6 px and the chin ~5.5 px too high (a smaller,
#: closed mouth); the horizontal medians are within 0.6 px and not kept
UNDER_MASK_OFFSET = np.stack([np.zeros(68), np.array([
    -1.1, -1.4, -2.3, -2.8, -3.3, -3.6, -4.6, -5.5, -5.6, -5.5, -4.9, -3.8, -3.5, -2.9, -2.5, -1.8, -1.5,  # jaw
    -0.3, -0.1, -0.0, -0.2, -0.3, -0.4, -0.4, -0.2, -0.3, -0.6,  # brows
    -0.4, -0.8, -1.4, -2.0, -2.5, -2.7, -2.9, -2.9, -2.5,  # nose
    -0.1, -0.2, -0.2, -0.1, -0.0, 0.0, -0.3, -0.4, -0.4, -0.3, -0.2, -0.2,  # eyes
    -2.7, -2.8, -3.0, -3.5, -3.2, -3.0, -2.9, -5.4, -6.0, -6.2, -6.0, -5.4,  # outer lips
    -2.7, -3.3, -3.4, -3.4, -2.8, -4.9, -5.1, -5.0,  # inner lips
])], axis=1)


def unmasked_guess(landmarks: np.ndarray, size: int) -> np.ndarray:
    """FaceMesh's points on a face wearing a mask (68, 2, in its aligned ``size`` crop), moved by
    the median displacement a worn mask causes (:data:`UNDER_MASK_OFFSET`): the best guess of where
    they lie on the face beneath, which is what a landmark-guided model was trained on."""
    return np.asarray(landmarks, np.float64) - UNDER_MASK_OFFSET * (size / UNDER_MASK_SIZE)


def mean_face_guide(landmarks: np.ndarray, size: int) -> np.ndarray:
    """float32 (size, size) in [0, 1]: the shipped mean face warped so its landmarks lie at
    ``landmarks`` (68, 2, pixels of a ``size`` square), its luminance above a Gaussian of
    :data:`~unmasked.faces.mean_face.STRUCTURE_SIGMA` px at 256² (scaled to ``size``), where it is
    darker than its surroundings, over :data:`MEAN_FACE_GUIDE_RANGE`: the lips' line, nostrils, eye
    contours and chin shadow as soft lines on 0, like the contours' drawing but the mean face's own."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise ValueError(f"landmarks must be finite (68, 2), got {lm.shape}")
    mean = shipped_mean_face()
    grey = warp_by_landmarks(mean.image, mean.points, lm, int(size)).mean(axis=2)
    detail = grey - cv2.GaussianBlur(grey, (0, 0), STRUCTURE_SIGMA * size / 256.0)
    return np.clip(-detail / MEAN_FACE_GUIDE_RANGE, 0.0, 1.0).astype(np.float32)


def draw_guide(landmarks: np.ndarray, size: int | tuple[int, int], kind: str = "lines") -> np.ndarray:
    """The guide of ``kind`` (:data:`GUIDE_KINDS`) for ``landmarks``: :func:`draw_landmark_guide` or,
    for a square ``size``, :func:`mean_face_guide`."""
    if kind == "lines":
        return draw_landmark_guide(landmarks, size)
    if kind != "mean_face":
        raise ValueError(f"unknown guide kind {kind!r}; choose from {', '.join(GUIDE_KINDS)}")
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if h != w:
        raise ValueError(f"a mean face guide is square, got {h}x{w}")
    return mean_face_guide(landmarks, h)
