"""A worn mask's ear loops: found beside the mask (:func:`find_ear_loops`), painted out of the photo
(:func:`remove_ear_loops`), and drawn on synthetic masks to measure both (:func:`draw_ear_loops`).

The face model repaints the mask's region, but a mask's straps run on from its sides over the
cheeks to the ears, outside that region: thin white, black or fabric-coloured lines that stayed in
the restored photo (on 6 of the README's 20 real photos). A strap is a
line: narrower than a few pixels and much longer than wide, leaving the mask's side, brighter than
the skin around it when the fabric is brighter (a white or pale blue mask's white loops), darker
when the fabric is darker, either on a patterned fabric (:data:`LOOP_PATTERN`: black and white
checks, whose median grey hid their white loops). It is found with a morphological top-hat (Serra, "Image Analysis and
Mathematical Morphology", 1982: the image minus its opening by a disc keeps the bright structures
narrower than the disc; the closing minus the image, the dark ones) on the luminance of an aligned
crop at :data:`LOOP_SIZE`, kept where it lies beside the mask, between eye level and the mask's
bottom, outside the eyes' span and within the ears', close to the fabric's colour, and in a thin
component that touches the mask's region. The line is then filled from its surroundings at the
photo's resolution with Telea's fast marching (Telea, JGT 2004; OpenCV's ``cv2.inpaint``): a strap
a few pixels wide over skin, hair or background is the case diffusion-like inpainting does well,
and the face model, made for the lower face, would paint skin over hair.

Measured in the README ("Ear loops").
"""

from __future__ import annotations

import cv2
import numpy as np

from unmasked.faces.landmarks import disc, face_outline
from unmasked.faces.skin_texture import skin_mask

#: the side of the aligned crop loops are looked for on (a strap is 1-4 px wide there)
LOOP_SIZE = 256
#: the top-hat's disc radius (a strap up to about twice as wide is kept), as a share of the side
LOOP_WIDTH = 0.016
#: a pixel is a candidate where the top-hat reaches this many CIELAB L* units ...
LOOP_CONTRAST = 6.0
#: ... and its colour lies within this CIELAB distance of the fabric's median colour, and its hue
#: (a*b*) nearer the fabric's than the visible skin's, give or take LOOP_HUE_SLACK of their distance
LOOP_COLOUR = 45.0
LOOP_HUE_SLACK = 0.3
#: where a strap can lie: within LOOP_REACH of the mask's region, from LOOP_MARGIN above the eyes'
#: level to LOOP_MARGIN below the region's bottom, LOOP_MARGIN beyond the outer eye corners and
#: within LOOP_EARS beyond the outermost jaw points (the ears); shares of the side
LOOP_REACH = 0.2
LOOP_MARGIN = 0.02
LOOP_EARS = 0.08
#: a kept component touches the region (comes within LOOP_TOUCH of it), is at least LOOP_LENGTH long (its
#: box's diagonal) and at most LOOP_MEAN_WIDTH wide on average (area / length); shares of the side
LOOP_TOUCH = 0.01
LOOP_LENGTH = 0.05
LOOP_MEAN_WIDTH = 0.03
#: a face's width (jaw point 0 to 16) in an FFHQ crop of LOOP_SIZE px: the unit of the drawn straps
FACE_WIDTH = 141.0
#: polarity: the fabric counts as brighter or darker than the skin around it by this many L* units
LOOP_POLARITY = 8.0
#: a fabric whose lightness spans this many L* units from its 10th to its 90th percentile is patterned
#: (checks, prints): its straps may be its bright or its dark colour, looked for in both polarities
LOOP_PATTERN = 40.0


def cielab(image: np.ndarray) -> np.ndarray:
    """float32 (..., 3) CIELAB of a uint8 RGB ``image``: L* in 0..100, a* and b* centred on 0."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def find_ear_loops(crop: np.ndarray, fabric: np.ndarray, hole: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """bool (S, S): the pixels of the worn mask's straps in ``crop`` (uint8 (S, S, 3), an aligned face,
    best at :data:`LOOP_SIZE`), beside ``hole`` (bool (S, S), the region the face model repaints)
    whose fabric is ``fabric`` (bool (S, S), the pixels found to be the mask); ``landmarks`` (68, 2)
    the face's points in crop pixels. Empty when there is no fabric or no hole."""
    crop = np.asarray(crop)
    side = crop.shape[0]
    if crop.ndim != 3 or crop.shape[1:] != (side, 3) or np.shape(fabric) != (side, side) or np.shape(hole) != (side, side):
        raise ValueError(f"crop must be (S, S, 3) and fabric, hole (S, S), got {crop.shape}, {np.shape(fabric)}, "
                         f"{np.shape(hole)}")
    fabric, hole = np.asarray(fabric, bool), np.asarray(hole, bool)
    if fabric.sum() < 20 or not hole.any():
        return np.zeros((side, side), bool)
    candidates = strap_candidates(crop, fabric, hole, landmarks)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[cv2.dilate(hole.astype(np.uint8), disc(LOOP_TOUCH * side)).astype(bool)])
    keep = np.zeros(count, bool)
    for i in touching[touching > 0]:
        _, _, w, h, area = stats[i]
        length = float(np.hypot(w, h))
        keep[i] = length >= LOOP_LENGTH * side and area / length <= LOOP_MEAN_WIDTH * side
    return keep[labels]


def strap_candidates(crop: np.ndarray, fabric: np.ndarray, hole: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """bool (S, S): the pixels of :func:`find_ear_loops`'s arguments that could be a strap's, before its
    components are judged: thin in the fabric's polarity, nearer the fabric's colour than the skin's,
    and where a strap can lie."""
    side = crop.shape[0]
    lab = cielab(crop)
    core = cv2.erode(fabric.astype(np.uint8), disc(LOOP_MARGIN * side)).astype(bool)
    cloth = lab[core if core.sum() >= 20 else fabric]
    fabric_colour = np.median(cloth, axis=0)
    skin = skin_mask(crop, hole, np.asarray(landmarks, np.float64), side / 128)
    skin_colour = np.median(lab[skin], axis=0) if skin.sum() >= 20 else fabric_colour
    dark_end, bright_end = np.percentile(cloth[:, 0], [10, 90])
    patterned = bright_end - dark_end > LOOP_PATTERN
    # a patterned fabric's colours: its median, and the medians of its darkest and brightest tenths
    colours = [fabric_colour] + ([np.median(cloth[cloth[:, 0] <= dark_end], axis=0),
                                  np.median(cloth[cloth[:, 0] >= bright_end], axis=0)] if patterned else [])

    lum = cv2.GaussianBlur(lab[..., 0], (0, 0), 0.6 * side / LOOP_SIZE)
    element = disc(LOOP_WIDTH * side)
    bright = lum - cv2.morphologyEx(lum, cv2.MORPH_OPEN, element)
    dark = cv2.morphologyEx(lum, cv2.MORPH_CLOSE, element) - lum
    if patterned:
        thin = np.maximum(bright, dark)
    elif fabric_colour[0] > skin_colour[0] + LOOP_POLARITY:
        thin = bright
    elif fabric_colour[0] < skin_colour[0] - LOOP_POLARITY:
        thin = dark
    else:
        thin = np.maximum(bright, dark)
    # near one of the fabric's colours, and nearer its hue than the skin's, give or take LOOP_HUE_SLACK
    # of the distance between the two (a*b* only: a thin strap's pixels take the lightness of what lies
    # around it, and some of its colour), so an ear's rim or a sliver of cheek is no strap
    hue = lab[..., 1:]
    to_skin = np.linalg.norm(hue - skin_colour[1:], axis=2)
    near_colour = np.zeros((side, side), bool)
    for colour in colours:
        slack = LOOP_HUE_SLACK * float(np.linalg.norm(colour[1:] - skin_colour[1:]))
        near_colour |= (np.linalg.norm(lab - colour, axis=2) < LOOP_COLOUR) & (
            np.linalg.norm(hue - colour[1:], axis=2) < to_skin + slack)

    zone = (cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5) <= LOOP_REACH * side) & ~hole
    rows, cols = np.arange(side)[:, None], np.arange(side)[None, :]
    lm = np.asarray(landmarks, np.float64)
    margin = LOOP_MARGIN * side
    eye_y = lm[36:48, 1].mean()
    bottom = np.nonzero(hole.any(axis=1))[0].max()
    zone &= (rows > eye_y - margin) & (rows < bottom + margin)
    zone &= (cols < lm[36, 0] - margin) | (cols > lm[45, 0] + margin)
    zone &= (cols > lm[:17, 0].min() - LOOP_EARS * side) & (cols < lm[:17, 0].max() + LOOP_EARS * side)
    # beyond the face's outline a strap runs to the ear, above its lobe: an earring hangs below it
    lobe = np.where(cols < side / 2, lm[2, 1], lm[14, 1])
    zone &= face_outline(lm, side, 0.0) | (rows < lobe)
    return (thin > LOOP_CONTRAST) & near_colour & zone


def remove_ear_loops(photo: np.ndarray, loops: np.ndarray, matrix: np.ndarray, *, radius: int = 3) -> np.ndarray:
    """``photo`` (uint8 (H, W, 3)) with the straps ``loops`` (bool (S, S), found on the aligned crop that
    ``matrix``, photo to crop, maps to) filled from their surroundings (Telea's method) at the
    photo's resolution, grown by a crop pixel for their anti-aliased edge. Pixels elsewhere are
    returned unchanged; no loops, the photo itself."""
    if not np.any(loops):
        return photo
    h, w = photo.shape[:2]
    grown = cv2.dilate(np.asarray(loops, np.uint8), disc(1)).astype(np.float32)
    back = cv2.warpAffine(grown, cv2.invertAffineTransform(matrix), (w, h), flags=cv2.INTER_LINEAR) > 0.25
    if not back.any():
        return photo
    ys, xs = np.nonzero(back)
    pad = 4 * radius
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    out = photo.copy()
    out[y0:y1, x0:x1] = cv2.inpaint(np.ascontiguousarray(photo[y0:y1, x0:x1]), back[y0:y1, x0:x1].astype(np.uint8),
                                    radius, cv2.INPAINT_TELEA)
    return out


def draw_ear_loops(image: np.ndarray, hole: np.ndarray, landmarks: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic straps for a synthetic worn mask: ``image`` (uint8 (H, W, 3), a face wearing a mask
    whose pixels are ``hole``; ``landmarks`` its 68 points) with two loops on each side drawn from
    the mask's side, at its top and bottom, to the ear (the first and last jaw points), white or
    the fabric's colour, 1-3 px wide on a face as wide as an FFHQ crop's at 256 px (scaled with the
    face's width). Only what lies outside ``hole`` is drawn. Returns ``(image, loops)``, ``loops``
    bool (H, W): the pixels the straps changed."""
    image = np.asarray(image)
    hole = np.asarray(hole, bool)
    lm = np.asarray(landmarks, np.float64)
    rows = np.nonzero(hole.any(axis=1))[0]
    if rows.size == 0:
        return image.copy(), np.zeros(hole.shape, bool)
    fabric_colour = np.median(image[hole], axis=0)
    colour = np.full(3, float(rng.uniform(225, 255))) if rng.random() < 0.5 else fabric_colour.astype(np.float64)
    alpha = np.zeros(hole.shape, np.float32)
    unit = (lm[16, 0] - lm[0, 0]) / FACE_WIDTH  # lengths below are for a face of an FFHQ crop at 256 px
    width = float(rng.uniform(1.0, 3.0)) * unit
    shift = 8  # sub-pixel precision of cv2's anti-aliased polylines
    top, bottom = rows.min(), rows.max()
    for sign, ear in ((-1, lm[0]), (1, lm[16])):
        for share, ear_drop in ((0.2, 0.0), (0.8, 0.12)):
            y = int(round(top + share * (bottom - top)))
            xs = np.nonzero(hole[y])[0]
            if xs.size == 0:
                continue
            start = np.array([xs.min() if sign < 0 else xs.max(), y], np.float64)
            end = ear + np.array([sign * 0.01, ear_drop]) * LOOP_SIZE * unit
            bend = (start + end) / 2 + np.array([0.0, rng.uniform(-0.02, 0.02) * LOOP_SIZE * unit])
            t = np.linspace(0, 1, 24)[:, None]
            curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t ** 2 * end
            cv2.polylines(alpha, [np.round(curve * (1 << shift)).astype(np.int32)], False, 1.0,
                          thickness=max(1, int(round(width))), lineType=cv2.LINE_AA, shift=shift)
    alpha = np.clip(alpha, 0, 1) * ~hole
    out = image.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out, np.any(out != image, axis=2)
