"""The photo's own skin grain, synthesised over a restored face.

**Why.** The face model paints at 128² and the fill is upsampled to the face's size, so inside the
hole there is no detail finer than a 128² pixel: no pores, no JPEG noise, no sensor grain, where
the forehead and cheeks above the mask have them. Gaussian noise matched to the photo's (tried:
README, "The face's structure from a mean face") reads as speckle; this takes the grain itself
from the person's visible skin.

**How** (:func:`skin_texture`). The luminance's high band (the image minus a Gaussian of
``sigma`` px of the fill's crop) is cut into square patches on the visible skin: inside the
face's outline, away from the hole, the eyes and the brows, with luminance near the skin's median
(no hair, no fabric), and softly limited (tanh) to :data:`CLIP` robust deviations, so point
outliers (a highlight, a pore, a watermark's stroke) do not become specks. Patches with more than
1.5 times the median contrast are dropped (a hair, a wrinkle's edge). Random patches are overlap-added on a grid at half their side with a raised-cosine
window and divided by the root of the summed squared weights, so the blend keeps the patches'
variance instead of averaging it away: the variance-preserving blending of Heitz & Neyret
("High-Performance By-Example Noise using a Histogram-Preserving Blending Operator", HPG 2018),
with patches as in image quilting (Efros & Freeman, SIGGRAPH 2001) but placed at random instead
of by matching their overlaps, which for a stationary micro-texture such as skin grain is enough.
The result is scaled to the median patch contrast times :data:`GRAIN_GAIN`. Measured in the README
("Skin grain", "The grain at 1.5 times its contrast").
"""

from __future__ import annotations

import cv2
import numpy as np

from unmasked.faces.landmarks import disc, face_outline

#: the high band's split, in pixels of the fill model's crop (scaled by the paste's factor)
GRAIN_SIGMA = 0.75
#: the patches' side, in pixels of the fill model's crop
PATCH = 4
#: patches with more than this times the median contrast are not used
MAX_CONTRAST = 1.5
#: the high band is softly limited to this many robust deviations of the skin's (0: not limited)
CLIP = 2.0
#: how many patches are drawn from the skin
PATCHES = 400
#: the grain is taken at this many times the skin patches' median contrast: the soft limit (CLIP) and
#: the dropped high-contrast patches keep specks out and take contrast with them, so the grain at 1
#: has about half the visible skin's own high-band spread (median 2.06 on 30 held-out faces); 1.5
#: held its rule (README, "The grain at 1.5 times its contrast")
GRAIN_GAIN = 1.5


def skin_mask(image: np.ndarray, hole: np.ndarray, points: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """bool (S, S): the visible skin of an aligned face ``image`` (uint8 (S, S, 3)): inside the
    face's outline (``points``, 68 landmarks in its pixels), 4 crop pixels (x ``scale``) or more
    from ``hole`` and from the eyes and brows, with luminance within 2.5 robust deviations (at
    least 10 grey levels) of the median there."""
    side = image.shape[0]
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    skin = face_outline(points, side, 0.0)
    skin &= ~cv2.dilate(np.asarray(hole, np.uint8), disc(4 * scale)).astype(bool)
    features = np.zeros((side, side), np.uint8)
    for eye in (points[36:42], points[42:48]):
        cv2.fillPoly(features, [np.round(eye).astype(np.int32)], 1)
    for brow in (points[17:22], points[22:27]):
        cv2.polylines(features, [np.round(brow).astype(np.int32)], False, 1, thickness=max(1, int(round(3 * scale))))
    skin &= ~cv2.dilate(features, disc(4 * scale)).astype(bool)
    if not skin.any():
        return skin
    median = np.median(lum[skin])
    spread = 1.4826 * np.median(np.abs(lum[skin] - median))
    return skin & (np.abs(lum - median) < 2.5 * max(spread, 4.0))


def skin_texture(image: np.ndarray, hole: np.ndarray, points: np.ndarray, scale: float = 1.0, *,
                 seed: int = 0, gain: float | None = None) -> np.ndarray | None:
    """float32 (S, S): a luminance grain for ``hole`` (bool (S, S)) of the aligned face ``image``
    (uint8 (S, S, 3), ``scale`` x the fill model's crop; ``points`` its 68 landmarks in its pixels),
    synthesised from the visible skin's high band (see the module docstring). Zero mean; its
    contrast, measured over the hole, is the skin patches' median times ``gain`` (None:
    :data:`GRAIN_GAIN`, read at call time). None when too little skin is visible (fewer than 10
    whole patches)."""
    image = np.asarray(image)
    side = image.shape[0]
    if image.ndim != 3 or image.shape[1:] != (side, 3) or np.shape(hole) != (side, side):
        raise ValueError(f"image must be (S, S, 3) and hole (S, S), got {image.shape} and {np.shape(hole)}")
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    high = lum - cv2.GaussianBlur(lum, (0, 0), GRAIN_SIGMA * scale)
    p = max(4, int(round(PATCH * scale)))
    skin = skin_mask(image, hole, points, scale)
    if CLIP and skin.any():  # point outliers (highlights, pores, a watermark's strokes) read as specks
        spread = 1.4826 * np.median(np.abs(high[skin]))
        high = spread * CLIP * np.tanh(high / max(spread * CLIP, 1e-6))
    whole = cv2.erode(skin.astype(np.uint8), np.ones((p, p), np.uint8)).astype(bool)  # patch centres
    ys, xs = np.nonzero(whole)
    ys, xs = ys - p // 2, xs - p // 2
    ok = (ys >= 0) & (xs >= 0) & (ys + p <= side) & (xs + p <= side)
    ys, xs = ys[ok], xs[ok]
    if len(ys) < 10:
        return None
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ys), min(len(ys), PATCHES), replace=False)
    patches = np.stack([high[y:y + p, x:x + p] for y, x in zip(ys[pick], xs[pick], strict=True)])
    contrast = patches.reshape(len(patches), -1).std(axis=1)
    typical = float(np.median(contrast))
    patches = patches[contrast <= MAX_CONTRAST * typical]
    window = np.sin(np.pi * (np.arange(p) + 0.5) / p) ** 2
    window = np.outer(window, window).astype(np.float32)
    step = max(1, p // 2)
    total = np.zeros((side + 2 * p, side + 2 * p), np.float32)
    weight2 = np.zeros_like(total)
    for y in range(0, side + p, step):
        for x in range(0, side + p, step):
            total[y:y + p, x:x + p] += window * patches[rng.integers(len(patches))]
            weight2[y:y + p, x:x + p] += window * window
    grain = (total / np.sqrt(np.maximum(weight2, 1e-6)))[p:p + side, p:p + side]
    inside = np.asarray(hole, bool)
    grain -= grain[inside].mean() if inside.any() else grain.mean()
    now = grain[inside].std() if inside.any() else grain.std()
    return grain * (typical / max(float(now), 1e-6)) * (GRAIN_GAIN if gain is None else gain)
