"""FaceMesh: 468 face landmarks from MediaPipe's published model, and the 68 iBUG points from them.

Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs", CVPR
Workshops 2019. A light regression network predicts 468 3-D mesh vertices and a face-presence
score from a 192 x 192 crop of the face. The crop (MediaPipe's
``face_detection_front_detection_to_roi``): the BlazeFace box made square on its longer side,
enlarged 1.5x, centred on the box and rotated so the two eye key points lie on a horizontal line;
the crop is in [0, 1]. Unlike dlib's 68-point regression trees, which were fitted to uncovered
faces, the mesh is a whole-head shape fit: under a worn mask it still places the eyes, brows and
nose bridge from what it sees and the hidden jaw and mouth from the head's pose and proportions.

:data:`MESH_TO_IBUG68` picks, for each iBUG 300-W point, the mesh vertex closest to it on
held-out uncovered faces (fitted against dlib's 68-point predictor, see the card in
``models/mediapipe_face.md``), so everything written for 68 points (FFHQ alignment, MaskTheFace's
key points, the landmark mask heuristic) runs on mesh points unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from unmasked.faces.tflite import load_tflite

#: the crop around a detection: square on the longer box side, times this (MediaPipe: 1.5)
ROI_SCALE = 1.5
#: mesh vertices of the two outer eye corners, used to rotate a landmark-based crop (MediaPipe: 33, 263)
EYE_CORNERS = (33, 263)
#: FaceMesh's face-presence threshold (a sigmoid score; MediaPipe's ThresholdingCalculator uses 0.5)
MIN_PRESENCE = 0.5

#: iBUG 300-W index -> mesh vertex: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
MESH_TO_IBUG68 = np.array([
    127, 227, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 447, 356,  # jaw
    70, 63, 105, 65, 55, 285, 295, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 460,  # nose bridge, nostrils
    7, 159, 158, 155, 153, 144, 382, 385, 387, 249, 373, 380,  # eyes
    61, 74, 37, 11, 267, 304, 291, 405, 314, 17, 84, 181,  # outer lips
    62, 38, 13, 268, 292, 317, 14, 87,  # inner lips
])


@dataclass
class Mesh:
    """FaceMesh output in photo pixels: ``points`` float64 (468, 3) (x, y, and z in the same
    scale, smaller = nearer the camera) and ``presence`` in (0, 1)."""

    points: np.ndarray
    presence: float

    @property
    def ibug68(self) -> np.ndarray:
        """(68, 2) iBUG 300-W points (see :data:`MESH_TO_IBUG68`)."""
        return self.points[MESH_TO_IBUG68, :2].copy()


def roi_from_box(box, right_eye, left_eye, scale: float = ROI_SCALE) -> tuple[np.ndarray, float, float]:
    """``(centre (2,), side, angle)`` of the crop around a detection ``box`` (x, y, w, h): square on
    the longer side times ``scale``, rotated by ``angle`` (radians) so that the eye key points
    (image-left eye first) lie on a horizontal line."""
    x, y, w, h = box
    centre = np.array([x + w / 2, y + h / 2], np.float64)
    d = np.asarray(left_eye, np.float64) - np.asarray(right_eye, np.float64)
    return centre, max(w, h) * scale, math.atan2(d[1], d[0])


def roi_from_points(points: np.ndarray, scale: float = ROI_SCALE) -> tuple[np.ndarray, float, float]:
    """The crop around mesh ``points`` (468, >=2) of a previous pass, as MediaPipe tracks a face:
    rotated by the outer eye corners, the points' bounding box (in the rotated frame), square on
    its longer side, times ``scale``."""
    a, b = points[EYE_CORNERS[0], :2], points[EYE_CORNERS[1], :2]
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # photo -> rotated frame
    p = points[:, :2] @ rot.T
    lo, hi = p.min(0), p.max(0)
    centre = ((lo + hi) / 2) @ rot  # back to the photo
    return centre, float((hi - lo).max()) * scale, angle


def crop_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """2 x 3 affine from photo pixels to continuous coordinates of the ``size`` x ``size`` crop (its
    centre at ``size / 2``, its x axis along ``angle``)."""
    c, s = math.cos(angle), math.sin(angle)
    k = size / side
    rot = np.array([[c, s], [-s, c]]) * k
    return np.hstack([rot, (size / 2 - rot @ centre)[:, None]])


def run_mesh(rgb: np.ndarray, centre: np.ndarray, side: float, angle: float) -> Mesh:
    """FaceMesh on the crop ``(centre, side, angle)`` of ``rgb`` uint8 (H, W, 3); points in photo pixels."""
    model = load_tflite("facemesh")
    size = model.input_size[0]
    # ``matrix`` takes photo pixel indices to continuous crop coordinates (the model's output
    # units); warpAffine works on pixel indices at both ends, hence the half-pixel shift
    matrix = crop_matrix(centre, side, angle, size)
    to_index = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]]) @ np.vstack([matrix, [0, 0, 1]])
    # shrink first (area averaging) so a large face does not alias; not where a side of the photo
    # would shrink below a pixel (a square far larger than a thin photo: OpenCV refuses an empty size)
    if side > 2 * size and min(rgb.shape[:2]) * 2 * size >= side:
        f = 2 * size / side
        small = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        from_small = np.array([[1 / f, 0, 0.5 / f - 0.5], [0, 1 / f, 0.5 / f - 0.5], [0, 0, 1]])
        crop = cv2.warpAffine(small, (to_index @ from_small)[:2], (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        crop = cv2.warpAffine(rgb, to_index[:2], (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    landmarks, flag = model(crop[None].astype(np.float32) / 255.0)
    pts = landmarks.reshape(-1, 3).astype(np.float64)  # crop pixels (continuous), z in the same units
    inverse = cv2.invertAffineTransform(matrix)
    xy = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    z = pts[:, 2] * side / size
    presence = 1.0 / (1.0 + math.exp(-float(np.clip(flag.ravel()[0], -100, 100))))
    return Mesh(np.column_stack([xy, z]), presence)


def mesh_for_detection(rgb: np.ndarray, box, right_eye, left_eye, passes: int = 2) -> Mesh:
    """FaceMesh for one detection: the first pass on the detection's crop, each further pass on
    the crop around the previous pass's points (MediaPipe's tracking step, here on one photo)."""
    centre, side, angle = roi_from_box(box, right_eye, left_eye)
    mesh = run_mesh(rgb, centre, side, angle)
    for _ in range(passes - 1):
        mesh = run_mesh(rgb, *roi_from_points(mesh.points))
    return mesh


def mesh_for_box(rgb: np.ndarray, box, passes: int = 2) -> Mesh:
    """FaceMesh for a face in a user-given ``box`` (x, y, w, h) with no key points: the first pass on
    the unrotated crop around the box (as :func:`roi_from_box`), further passes as in
    :func:`mesh_for_detection` (the second one straightens a tilted head)."""
    x, y, w, h = box
    mesh = run_mesh(rgb, np.array([x + w / 2, y + h / 2], np.float64), max(w, h) * ROI_SCALE, 0.0)
    for _ in range(passes - 1):
        mesh = run_mesh(rgb, *roi_from_points(mesh.points))
    return mesh
