"""FFHQ-style face alignment and paste-back.

The crop is the one of the FFHQ dataset script (Karras et al., "A Style-Based Generator
Architecture for Generative Adversarial Networks", CVPR 2019; ``recreate_aligned_images`` in
NVlabs/ffhq-dataset): from the 68 landmarks take the two eye centres and the two outer mouth
corners (48, 54);

    eye_avg = (eye_left + eye_right) / 2,   eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) / 2,   eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth), normalised, times max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)
    y = rot90(x),   c = eye_avg + 0.1 eye_to_mouth
    quad = [c - x - y, c - x + y, c + x + y, c + x - y]   (top-left, bottom-left, bottom-right, top-right)

and the quad is mapped onto an S x S square. The quad is a rotated square, so the map is a
similarity transform, done here with ``cv2.warpAffine``; the returned 2 x 3 ``matrix`` maps
original pixel coordinates to aligned ones. As in the FFHQ script, a large face is first
shrunk by an integer factor (area averaging) so the warp does not alias, and the parts of the
quad outside the photo are filled by reflection (``BORDER_REFLECT_101``, numpy's "reflect";
the script additionally blurs that padding, which is not done here). This is how
``../shared/data/faces/celeba_wild256`` was made: re-aligning its images reproduces them
(see tests/faces/test_faces.py).

:func:`paste_back` warps a filled crop back into the photo and blends it only over the hole,
so pixels away from the hole keep their exact bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from unmasked.faces.detect import Face, check_rgb


@dataclass
class AlignedFace:
    """An aligned crop: ``image`` uint8 (S, S, 3), ``matrix`` float64 (2, 3) mapping original
    pixel (x, y) to crop pixel, and the ``face`` it came from (original coordinates)."""

    image: np.ndarray
    matrix: np.ndarray
    face: Face

    @property
    def size(self) -> int:
        return self.image.shape[0]

    @property
    def landmarks(self) -> np.ndarray:
        """The face's landmarks in crop pixels, (68, 2)."""
        return transform_points(self.matrix, self.face.landmarks)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine ``matrix`` to ``points`` (N, 2)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def ffhq_quad(landmarks: np.ndarray, zoom: float = 1.0) -> np.ndarray:
    """The FFHQ crop quad (4, 2): top-left, bottom-left, bottom-right, top-right, in image pixels.

    ``zoom`` > 1 scales the quad about the eyes' midpoint: the crop shows ``zoom`` times more
    around the eyes, which stay where they were in the crop (used when a worn mask has made dlib
    place the mouth and jaw too high, so the FFHQ quad is too small; see
    :mod:`unmasked.pipelines.unmask`).
    """
    if not zoom > 0:
        raise ValueError(f"zoom must be > 0, got {zoom}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {lm.shape}")
    eye_left, eye_right = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad if zoom == 1.0 else eye_avg + (quad - eye_avg) * zoom


def alignment_matrix(landmarks: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """2 x 3 affine mapping original pixels to the ``size`` x ``size`` FFHQ crop.

    The FFHQ script hands ``quad + 0.5`` to PIL's QUAD transform (PIL puts pixel centres at
    +0.5), i.e. the quad's corners, in landmark (pixel-index) coordinates, land on the outer
    corners of the output, which are at -0.5 and S - 0.5 in pixel-index coordinates.
    """
    quad = ffhq_quad(landmarks, zoom)
    dst = np.array([[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    return cv2.getAffineTransform(quad[:3].astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def scale_of(matrix: np.ndarray) -> float:
    """Crop pixels per original pixel (the similarity's scale)."""
    return math.sqrt(abs(np.linalg.det(matrix[:, :2])))


def align_face(rgb: np.ndarray, face: Face, size: int = 128, zoom: float = 1.0) -> AlignedFace:
    """The FFHQ-aligned ``size`` x ``size`` crop of ``face`` in ``rgb`` uint8 (H, W, 3); ``zoom``: see
    :func:`ffhq_quad`."""
    rgb = check_rgb(rgb)
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    matrix = alignment_matrix(face.landmarks, size, zoom)
    quad = ffhq_quad(face.landmarks, zoom)
    h, w = rgb.shape[:2]
    shrink = int(math.floor(1.0 / scale_of(matrix) * 0.5))  # as the FFHQ script: only when > 2x too big
    if shrink <= 1:
        out = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return AlignedFace(out, matrix, face)

    # crop to the quad's bounding box (plus what reflection needs), then shrink by area averaging
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - shrink
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + shrink
    lo_x, hi_x = (0 if x0 < 0 else x0), (w if x1 > w else x1)
    lo_y, hi_y = (0 if y0 < 0 else y0), (h if y1 > h else y1)
    if x0 < 0:
        hi_x = max(hi_x, -x0 + 1)
    if x1 > w:
        lo_x = min(lo_x, w - (x1 - w) - 1)
    if y0 < 0:
        hi_y = max(hi_y, -y0 + 1)
    if y1 > h:
        lo_y = min(lo_y, h - (y1 - h) - 1)
    lo_x, lo_y, hi_x, hi_y = max(lo_x, 0), max(lo_y, 0), min(hi_x, w), min(hi_y, h)
    crop = rgb[lo_y:hi_y, lo_x:hi_x]
    sw, sh = max(1, crop.shape[1] // shrink), max(1, crop.shape[0] // shrink)
    crop = crop[: sh * shrink, : sw * shrink]
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    # small pixel (u, v) covers original pixels lo + shrink * u ... : index map p = shrink * q + lo + (shrink - 1) / 2
    to_orig = np.array([[shrink, 0, lo_x + (shrink - 1) / 2], [0, shrink, lo_y + (shrink - 1) / 2]], dtype=np.float64)
    m_small = matrix[:, :2] @ to_orig[:, :2]
    m_small = np.hstack([m_small, (matrix[:, :2] @ to_orig[:, 2] + matrix[:, 2])[:, None]])
    out = cv2.warpAffine(small, m_small, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return AlignedFace(out, matrix, face)


def paste_back(
    original_rgb: np.ndarray,
    aligned_filled: np.ndarray,
    hole_aligned: np.ndarray,
    matrix: np.ndarray,
    *,
    dilate_px: int | None = None,
    feather_px: int | None = None,
    seamless: bool = False,
) -> np.ndarray:
    """Put the hole pixels of a filled aligned crop back into the photo.

    ``aligned_filled`` uint8 (S, S, 3) is warped back with the inverse of ``matrix``; the
    blend weight is 1 on the hole (``hole_aligned`` bool (S, S), True = hole, warped back and
    dilated by ``dilate_px``) and falls linearly to 0 over ``feather_px`` pixels outside it.
    Both are in original pixels; by default they follow the crop's scale (1 crop pixel =
    ``1 / scale`` original pixels): ``dilate_px = ceil(1/scale)``, ``feather_px = max(2, round(3/scale))``.
    Pixels with weight 0 -- everything farther than dilation + feathering from the hole, and
    everything outside the crop -- keep their exact bytes. Returns a new uint8 (H, W, 3) image.

    ``seamless``: before blending, the fill is matched to the photo across the seam in the
    gradient domain (:func:`gradient_match`), so a colour or brightness step at the hole's edge
    is spread smoothly over the fill instead of showing as an outline.
    """
    original_rgb = check_rgb(original_rgb)
    aligned_filled = check_rgb(aligned_filled)
    hole = np.asarray(hole_aligned).astype(bool)
    size = aligned_filled.shape[0]
    if aligned_filled.shape[:2] != (size, size) or hole.shape != (size, size):
        raise ValueError(f"aligned image {aligned_filled.shape} and hole {hole.shape} must both be square (S, S)")
    out = original_rgb.copy()
    if not hole.any():
        return out
    matrix = np.asarray(matrix, dtype=np.float64)
    px = 1.0 / scale_of(matrix)  # original pixels per crop pixel
    dilate_px = int(math.ceil(px)) if dilate_px is None else int(dilate_px)
    feather_px = max(2, int(round(3 * px))) if feather_px is None else int(feather_px)
    inverse = cv2.invertAffineTransform(matrix)

    # work in the region of the photo the hole maps to, plus the blend ring
    ys, xs = np.nonzero(hole)
    corners = np.array([[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1],
                        [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    back = transform_points(inverse, corners)
    margin = dilate_px + feather_px + 2
    h, w = original_rgb.shape[:2]
    x0, y0 = (np.floor(back.min(axis=0)).astype(int) - margin).clip(0)
    x1, y1 = np.ceil(back.max(axis=0)).astype(int) + margin + 1
    x1, y1 = min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return out
    roi_inverse = inverse.copy()
    roi_inverse[:, 2] -= (x0, y0)
    rw, rh = x1 - x0, y1 - y0

    filled = cv2.warpAffine(aligned_filled, roi_inverse, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hole_back = cv2.warpAffine(hole.astype(np.float32), roi_inverse, (rw, rh), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.01
    inside = cv2.warpAffine(np.ones((size, size), np.float32), roi_inverse, (rw, rh), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    if dilate_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1, 2 * dilate_px + 1))
        hole_back = cv2.dilate(hole_back.astype(np.uint8), k) > 0
    if feather_px > 0:
        dist = cv2.distanceTransform((~hole_back).astype(np.uint8), cv2.DIST_L2, 5)
        alpha = np.clip(1.0 - dist / (feather_px + 1), 0.0, 1.0)
    else:
        alpha = hole_back.astype(np.float32)
    alpha = (alpha * inside)[..., None]
    roi = out[y0:y1, x0:x1]
    if seamless:
        filled = gradient_match(filled, roi, hole_back & inside)
    blended = np.round(alpha * filled + (1.0 - alpha) * roi).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(alpha > 0, blended, roi)
    return out


def gradient_match(fill: np.ndarray, photo: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``fill`` (uint8 (H, W, 3)) with its ``region`` (bool (H, W)) re-solved in the gradient domain:
    the fill's own gradients inside, the photo's values on the region's boundary (Poisson image
    editing, Pérez, Gangnet & Blake, SIGGRAPH 2003; OpenCV's ``seamlessClone``). Outside ``region``
    the fill is first extended from its own inner pixels (Telea), so the guidance field carries no
    step across the seam: what the solve removes is exactly the step between fill and photo.
    Returns a new uint8 image; pixels outside ``region`` are ``fill``'s.
    """
    region = np.asarray(region, bool)
    if not region.any() or region.all():
        return fill.copy()
    pad = 4  # seamlessClone ignores a mask's outermost pixels and wants the region off the border
    fill_p = cv2.copyMakeBorder(fill, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    photo_p = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    region_p = cv2.copyMakeBorder(region.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    ring = cv2.dilate(region_p, np.ones((5, 5), np.uint8)) & (1 - region_p)
    guide = cv2.inpaint(fill_p, ring, 3, cv2.INPAINT_TELEA)  # the fill, continued past its edge
    x, y, w, h = cv2.boundingRect(region_p)
    solved = cv2.seamlessClone(guide, photo_p, region_p * 255, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    out = fill.copy()
    inner = region_p[pad:-pad, pad:-pad].astype(bool)
    out[inner] = solved[pad:-pad, pad:-pad][inner]
    return out
