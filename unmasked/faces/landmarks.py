"""Face geometry from 68 landmarks: the six key points of a worn mask, the head's turn, the mean aligned face.

The six points are those of the MaskTheFace method (Anwar & Raychowdhury, "Masked Face Recognition
for Secure Authentication", arXiv:2008.11104, 2020; an independent implementation), which warps
a mask template's six annotated points onto them (:mod:`unmasked.masks.face_mask`).

The six points (``mask_a`` .. ``mask_f`` in MaskTheFace's ``masks.cfg``), with ``u`` the unit
vector from the image-left eye centre to the image-right one and ``v`` perpendicular to it,
pointing down the face:

* ``b`` -- nose bridge: midpoint of landmarks 27 (bridge top) and 30 (nose tip).
* ``a``, ``c`` -- cheeks: the line along ``u`` through the eye centres, moved down along ``v``
  by the nose length |30 - 27|, cut with the jaw line 0..16 (``a`` image-left, ``c`` right).
* ``d``, ``f`` -- lower jaw: the line along ``u`` through the lowest point of the lower lip,
  cut with the jaw line.
* ``e`` -- chin: the face midline (27 to the lower-lip centre) cut with the jaw line, averaged
  with the ``v`` line through the eyes' midpoint cut with the jaw line (near landmark 8).

The jaw line is extended beyond landmarks 0 and 16 so a cut always exists. MaskTheFace
chooses a turned template by the angle between the face midline and the nose bridge; here the
turn is read from where the nose tip (30) lies between ``a`` and ``c`` along ``u``: below
``0.5 - TILT_THRESHOLD`` of the way across the nose points to the image left and the
``<kind>_left`` template is used, above ``0.5 + TILT_THRESHOLD`` the ``_right`` one.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

TILTS = ("front", "left", "right")
#: nose-tip position between the cheeks (0..1) beyond 0.5 +- this picks a turned template
TILT_THRESHOLD = 0.15




# --------------------------------------------------------------------------- six key points


def _cut_polyline(points: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Points where the infinite line ``origin + t * direction`` crosses the polyline ``points``
    (N, 2), whose first and last segments are extended to infinity; sorted by ``t``."""
    hits = []
    n = len(points) - 1
    for i in range(n):
        p, q = points[i], points[i + 1]
        seg = q - p
        denom = direction[0] * seg[1] - direction[1] * seg[0]
        if abs(denom) < 1e-12:
            continue
        rel = p - origin
        t = (rel[0] * seg[1] - rel[1] * seg[0]) / denom
        s = (rel[0] * direction[1] - rel[1] * direction[0]) / denom
        lo = -np.inf if i == 0 else 0.0
        hi = np.inf if i == n - 1 else 1.0
        if lo <= s <= hi:
            hits.append((t, origin + t * direction))
    hits.sort(key=lambda h: h[0])
    return np.array([h[1] for h in hits]).reshape(-1, 2)


def six_points(landmarks: np.ndarray) -> np.ndarray:
    """MaskTheFace's six key points (6, 2) in order a, b, c, d, e, f from 68 landmarks (see module doc)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {lm.shape}")
    eye_l, eye_r = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    u = eye_r - eye_l
    u /= max(np.hypot(*u), 1e-9)
    v = np.array([-u[1], u[0]])  # down the face
    eye_mid = (eye_l + eye_r) / 2
    jaw = lm[0:17]

    def across(origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hits = _cut_polyline(jaw, origin, u)
        if len(hits) < 2:  # degenerate landmarks: fall back to the jaw ends
            return jaw[0], jaw[-1]
        return hits[0], hits[-1]

    b = (lm[27] + lm[30]) / 2
    nose_len = abs(float(np.dot(lm[30] - lm[27], v)))
    a, c = across(eye_mid + nose_len * v)
    lower_lip = lm[[54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]]
    lowest = lower_lip[np.argmax(lower_lip @ v)]
    d, f = across(eye_mid + float(np.dot(lowest - eye_mid, v)) * v)

    lip_centre = lower_lip.mean(axis=0)
    chins = []
    for origin, direction in ((lm[27], lip_centre - lm[27]), (eye_mid, v)):
        norm = np.hypot(*direction)
        if norm < 1e-9:
            continue
        hits = _cut_polyline(jaw[3:14], origin, direction / norm)
        hits = hits[(hits - origin) @ direction > 0] if len(hits) else hits
        if len(hits):
            chins.append(hits[0])
    e = np.mean(chins, axis=0) if chins else lm[8]
    return np.stack([a, b, c, d, e, f])


def head_tilt(landmarks: np.ndarray) -> tuple[str, float]:
    """("front" | "left" | "right", r): r in [0, 1] is where the nose tip lies between the cheek
    points a and c along the eye line; "left" means the nose points to the image left."""
    lm = np.asarray(landmarks, dtype=np.float64)
    pts = six_points(lm)
    a, c = pts[0], pts[2]
    u = lm[42:48].mean(axis=0) - lm[36:42].mean(axis=0)
    span = float(np.dot(c - a, u))
    r = 0.5 if abs(span) < 1e-9 else float(np.dot(lm[30] - a, u)) / span
    if r < 0.5 - TILT_THRESHOLD:
        return "left", r
    if r > 0.5 + TILT_THRESHOLD:
        return "right", r
    return "front", r


def jittered_mean_landmarks(size: int, rng: np.random.Generator, jitter: float = 1.0) -> np.ndarray:
    """:data:`FFHQ_MEAN_LANDMARKS` at ``size`` px, moved by a random similarity (scale +-4 %,
    rotation +-4 degrees, shift +-2 % of the side, times ``jitter``) and a small yaw-like shift
    of the nose and mouth (+-4 % of the side), so masks vary like the faces they stand for."""
    lm = FFHQ_MEAN_LANDMARKS * size
    if jitter <= 0:
        return lm
    centre = np.array([size / 2, size / 2])
    angle = math.radians(rng.uniform(-4, 4) * jitter)
    scale = 1.0 + rng.uniform(-0.04, 0.04) * jitter
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    lm = (lm - centre) @ rot.T + centre + rng.uniform(-0.02, 0.02, 2) * size * jitter
    lm[27:36] += [rng.uniform(-0.04, 0.04) * size * jitter, 0]  # nose
    lm[48:68] += [rng.uniform(-0.02, 0.02) * size * jitter, 0]  # mouth
    return lm


def disc(radius: float) -> np.ndarray:
    """A disc-shaped (elliptical) structuring element of ``radius`` pixels (rounded, at least 1) for
    OpenCV's morphology."""
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def face_outline(landmarks: np.ndarray, size: int, grow: float = 0.05) -> np.ndarray:
    """bool (size, size): the face within its outline: the convex hull of its 68 landmarks (crop
    pixels: jaw, brows, nose, eyes, lips) dilated by a disc of radius ``round(grow x size)``
    (``unmask``'s outline option and its mean face use 0.05)."""
    inside = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(inside, cv2.convexHull(np.round(np.asarray(landmarks)).astype(np.int32)), 1)
    r = round(grow * size)
    if r > 0:
        inside = cv2.dilate(inside, disc(r))
    return inside.astype(bool)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """How far open the mouth is: the gap between the inner lips' middles (iBUG points 62 and 66)
    over the distance between the eyes' centres. float64 (...,) for landmarks (..., 68, 2).

    About 0 for closed lips; on FaceMesh's points of CelebA faces a smile showing teeth is about
    0.1 and up. Scale-free, so it reads the same at any image size.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must be (..., 68, 2), got {lm.shape}")
    gap = np.linalg.norm(lm[..., 66, :] - lm[..., 62, :], axis=-1)
    eyes = np.linalg.norm(lm[..., 36:42, :].mean(axis=-2) - lm[..., 42:48, :].mean(axis=-2), axis=-1)
    return gap / np.maximum(eyes, 1e-6)
