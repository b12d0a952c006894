"""Random hole masks for training and evaluation, drawn with OpenCV from an explicit ``rng``.

* :func:`free_form_mask` -- the free-form brush strokes of DeepFill v2: Yu et al.,
  "Free-Form Image Inpainting with Gated Convolution", ICCV 2019, Algorithm 1 (following the
  authors' ``brush_stroke_mask`` in ``inpaint_ops.py``), optionally unioned with the random
  box used in their training.
* :func:`irregular_mask` -- random thick lines, circles and ellipses in the spirit of the
  irregular masks of Liu et al., "Image Inpainting for Irregular Holes Using Partial
  Convolutions", ECCV 2018.
* :func:`box_mask` -- a random or centred rectangle (the classic "centre hole" setting).
* :func:`object_mask` -- the hole a user draws to remove an object: one or two filled blobs
  or upright silhouettes (a person, a statue, a post), often standing on the bottom edge.
* :func:`bucketed_mask` -- irregular strokes and blobs whose hole ratio lies in a chosen PConv
  bucket, touching the image border or not: a freely licensed equivalent of the NVIDIA
  irregular-mask test set (6 buckets x {border, no border}).

Every generator returns ``bool (H, W)``, True = hole, and takes ``size`` as an int S (square)
or an (H, W) tuple. All randomness comes from the ``numpy.random.Generator`` passed in, so the
same seed always gives the same mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from unmasked.masks import stats
from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_of

Size = int | tuple[int, int]

#: widths of the DeepFill v2 brush at 256 px; scaled linearly with min(H, W) / 256
FREE_FORM_WIDTH_AT_256 = (12.0, 40.0)
#: box sides of DeepFill v2 training (128 px minus up to 32 px at 256 px), as fractions of the sides
DEEPFILL_BOX_FRACTION = (0.375, 0.5)


def as_hw(size: Size) -> tuple[int, int]:
    """(H, W) from an int S or an (H, W) tuple; refuses non-positive sides."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got {size!r}")
    return h, w


def _draw_stroke(canvas: np.ndarray, points: np.ndarray, width: int) -> None:
    """Draw a polyline of ``width`` px on uint8 ``canvas`` (in place), round joints and caps."""
    pts = np.round(points).astype(np.int32)
    cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=max(1, width))
    radius = max(1, width // 2)
    for x, y in pts:
        cv2.circle(canvas, (int(x), int(y)), radius, 1, thickness=-1)


# --------------------------------------------------------------------------- DeepFill v2


def free_form_mask(size: Size, rng: np.random.Generator, *, with_box: bool = False) -> np.ndarray:
    """DeepFill v2 free-form brush strokes (Yu et al., ICCV 2019, Algorithm 1).

    1-3 strokes. Each stroke starts at a random pixel and makes ``randint(4, 12)`` (4-11)
    steps, so it has 5-12 points. Per stroke, an angle interval
    [2pi/5 - U(0, 2pi/15), 2pi/5 + U(0, 2pi/15)] is drawn; each step's angle is uniform in it,
    and every even step uses 2pi minus that angle, so strokes zig-zag as in the reference code.
    Step lengths are Normal(r, r/2) clipped to [0, 2r] with r = image diagonal / 8; points are
    clipped to the image. The brush width is uniform in [12, 40] px at 256 px and is **scaled
    linearly with min(H, W) / 256**, so masks look the same at every resolution (the reference
    uses fixed pixel widths at its 256 px training size). A filled circle of the brush radius
    at every point gives round joints. The mask is then flipped horizontally and vertically,
    each with probability 1/2 (the reference code computes these flips but drops the result).

    ``with_box=True`` unions a random rectangle as DeepFill v2 training does: sides 0.375-0.5
    of the image sides (128 px minus up to 32 px at 256 px), at a random position.

    Returns bool (H, W), True = hole.
    """
    h, w = as_hw(size)
    canvas = np.zeros((h, w), np.uint8)
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    radius = math.hypot(h, w) / 8
    scale = min(h, w) / 256
    for _ in range(rng.integers(1, 4)):
        n_steps = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = rng.uniform(angle_min, angle_max, size=n_steps)
        angles[::2] = 2 * math.pi - angles[::2]
        lengths = np.clip(rng.normal(radius, radius / 2, size=n_steps), 0, 2 * radius)
        points = np.empty((n_steps + 1, 2))
        points[0] = rng.integers(0, w), rng.integers(0, h)
        for i in range(n_steps):
            points[i + 1, 0] = np.clip(points[i, 0] + lengths[i] * math.cos(angles[i]), 0, w - 1)
            points[i + 1, 1] = np.clip(points[i, 1] + lengths[i] * math.sin(angles[i]), 0, h - 1)
        width = int(round(rng.uniform(*FREE_FORM_WIDTH_AT_256) * scale))
        _draw_stroke(canvas, points, width)
    mask = canvas.astype(bool)
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    if with_box:
        mask = mask | box_mask((h, w), rng, fraction=DEEPFILL_BOX_FRACTION)
    return np.ascontiguousarray(mask)


# --------------------------------------------------------------------------- PConv-style


def irregular_mask(size: Size, rng: np.random.Generator) -> np.ndarray:
    """Random thick lines, filled circles and elliptic arcs (PConv-style irregular holes).

    In the spirit of the irregular masks of Liu et al. (ECCV 2018): 1-8 straight strokes,
    0-5 circles and 0-5 elliptic arcs. Thicknesses and radii are 3 px up to 3% of (H + W)
    and ellipse axes up to half the sides, so the look is the same at every size.

    Returns bool (H, W), True = hole.
    """
    h, w = as_hw(size)
    canvas = np.zeros((h, w), np.uint8)
    big = max(4, int(0.03 * (h + w)))
    for _ in range(rng.integers(1, 9)):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(canvas, p1, p2, 1, int(rng.integers(3, big + 1)))
    for _ in range(rng.integers(0, 6)):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(canvas, centre, int(rng.integers(3, big + 1)), 1, thickness=-1)
    for _ in range(rng.integers(0, 6)):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, max(2, w // 2))), int(rng.integers(1, max(2, h // 2))))
        rotation, start = rng.uniform(0, 180), rng.uniform(0, 360)
        extent = rng.uniform(30, 300)
        cv2.ellipse(canvas, centre, axes, rotation, start, start + extent, 1, int(rng.integers(3, big + 1)))
    return canvas.astype(bool)


# --------------------------------------------------------------------------- boxes


def box_mask(
    size: Size,
    rng: np.random.Generator | None = None,
    *,
    centre: bool = False,
    fraction: tuple[float, float] = (0.25, 0.5),
) -> np.ndarray:
    """A rectangular hole.

    With ``centre=True`` the box is (H // 2) x (W // 2), placed at rows (H - H // 2) // 2 ...
    and columns likewise (exactly centred when the leftover is even); ``rng`` is not needed.
    Otherwise each side is a fraction uniform in ``fraction`` of the image side and the box
    lies at a uniform random position inside the image.

    Returns bool (H, W), True = hole.
    """
    h, w = as_hw(size)
    if centre:
        bh, bw = max(1, h // 2), max(1, w // 2)
        top, left = (h - bh) // 2, (w - bw) // 2
    else:
        if rng is None:
            raise ValueError("box_mask needs an rng unless centre=True")
        lo, hi = fraction
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"fraction must satisfy 0 < low <= high <= 1, got {fraction}")
        bh = min(h, max(1, int(round(rng.uniform(lo, hi) * h))))
        bw = min(w, max(1, int(round(rng.uniform(lo, hi) * w))))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    mask = np.zeros((h, w), bool)
    mask[top : top + bh, left : left + bw] = True
    return mask


# --------------------------------------------------------------------------- bucketed


def _random_walk(rng: np.random.Generator, start: np.ndarray, heading: float, length: float) -> np.ndarray:
    """Points (K+1, 2) of a 2-5 segment walk of total ``length`` turning up to +-60 deg per step."""
    n = int(rng.integers(2, 6))
    headings = heading + np.cumsum(np.concatenate([[0.0], rng.uniform(-math.pi / 3, math.pi / 3, n - 1)]))
    steps = length / n * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


#: stroke start (fraction of the free coordinate -> point) and inward heading / pi for each edge
_EDGES = (
    (lambda t, h, w: (t * (w - 1), 0.0), 0.5),  # top, heading down
    (lambda t, h, w: (t * (w - 1), h - 1.0), 1.5),  # bottom, heading up
    (lambda t, h, w: (0.0, t * (h - 1)), 0.0),  # left, heading right
    (lambda t, h, w: (w - 1.0, t * (h - 1)), 1.0),  # right, heading left
)


def _add_shape(canvas: np.ndarray, rng: np.random.Generator, area: float, thick: float, from_border: bool) -> None:
    """Draw one stroke or blob of roughly ``area`` px on uint8 ``canvas`` (in place).

    ``thick`` is the largest stroke width in px. With ``from_border`` the shape is a stroke
    whose first point lies on a random edge of the canvas (so the hole touches that edge),
    heading inwards.
    """
    h, w = canvas.shape
    if from_border or rng.random() < 0.75:
        width = max(3.0, min(rng.uniform(0.3, 1.0) * thick, math.sqrt(area)))
        length = max(width, area / width)
        if from_border:
            start_of, inward = _EDGES[int(rng.integers(0, 4))]
            start = np.array(start_of(rng.random(), h, w))
            heading = inward * math.pi + rng.uniform(-math.pi / 3, math.pi / 3)
        else:
            start = np.array([rng.uniform(0, w - 1), rng.uniform(0, h - 1)])
            heading = rng.uniform(0, 2 * math.pi)
        _draw_stroke(canvas, _random_walk(rng, start, heading, length), int(round(width)))
    else:
        aspect = rng.uniform(0.35, 1.0)  # blobs stay near stroke size: no huge clean ellipses
        a = max(2.0, min(1.2 * thick, math.sqrt(area / (math.pi * aspect))))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(round(a)), max(2, int(round(a * aspect))))
        cv2.ellipse(canvas, centre, axes, rng.uniform(0, 180), 0, 360, 1, thickness=-1)


def bucketed_mask(
    size: Size,
    bucket: int,
    touches_border: bool,
    rng: np.random.Generator,
    max_tries: int = 2000,
) -> np.ndarray:
    """Irregular strokes and blobs with ``hole_ratio`` in ``HOLE_RATIO_BUCKETS[bucket]``.

    The ratio lies in (low, high] of the bucket (uniformly spread over it) and
    ``stats.touches_border(mask) == touches_border``: a freely licensed stand-in for the NVIDIA
    irregular-mask test set of the PConv paper (Liu et al., ECCV 2018).

    Shapes are added one at a time, each sized to the remaining gap to a random target
    ratio; a shape that overshoots the bucket is discarded and a smaller one drawn instead.
    Without border contact everything is drawn inside an inner region with a margin of
    max(2, min(H, W) // 128) px; with border contact the first stroke starts on an edge.
    Stroke widths grow with the bucket, so large holes are thick strokes, not dense scribbles.
    ``max_tries`` bounds the number of shapes drawn (kept or discarded); exceeding it raises
    ``RuntimeError`` (about 15-60 shapes are typical).

    Returns bool (H, W), True = hole.
    """
    h, w = as_hw(size)
    if not 0 <= bucket < len(HOLE_RATIO_BUCKETS):
        raise ValueError(f"bucket must be in 0..{len(HOLE_RATIO_BUCKETS) - 1}, got {bucket}")
    lo, hi = HOLE_RATIO_BUCKETS[bucket]
    total = h * w
    lo_px, hi_px = math.floor(lo * total) + 1, math.floor(hi * total)
    while lo_px <= hi_px and bucket_of(lo_px / total) != bucket:
        lo_px += 1
    while hi_px >= lo_px and bucket_of(hi_px / total) != bucket:
        hi_px -= 1
    margin = 0 if touches_border else max(2, min(h, w) // 128)
    canvas = np.zeros((max(0, h - 2 * margin), max(0, w - 2 * margin)), np.uint8)
    if lo_px > hi_px or canvas.size < lo_px:
        raise ValueError(
            f"a {h}x{w} mask cannot have a hole ratio in bucket {bucket} with touches_border={touches_border}"
        )

    target = lo_px + rng.uniform(0.0, 0.9) * (hi_px - lo_px)
    thick = min(h, w) * (0.04 + 0.12 * hi)
    max_piece = total * max(0.03, 0.35 * hi)
    count, shrink, rejected = 0, 1.0, 0
    need_edge = touches_border
    for _ in range(max_tries):
        area = max(9.0, min(target - count, max_piece) * rng.uniform(0.3, 1.3) * shrink)
        trial = canvas.copy()
        _add_shape(trial, rng, area, thick, from_border=need_edge)
        n = int(np.count_nonzero(trial))
        if n > hi_px:  # overshoot: discard, try a smaller shape
            shrink, rejected = shrink * 0.6, rejected + 1
            if count >= lo_px and rejected >= 10:
                break
            continue
        canvas, count, shrink, rejected, need_edge = trial, n, 1.0, 0, False
        if count >= target:
            break
    else:
        raise RuntimeError(
            f"bucketed_mask: no mask in bucket {bucket} {HOLE_RATIO_BUCKETS[bucket]} with "
            f"touches_border={touches_border} after max_tries={max_tries} shapes (hole pixels {count} of {total})"
        )
    mask = np.zeros((h, w), bool)
    mask[margin : h - margin, margin : w - margin] = canvas.astype(bool)
    assert bucket_of(count / total) == bucket and stats.touches_border(mask) == touches_border
    return mask


# --------------------------------------------------------------------------- object removal


def _blob(h: int, w: int, rng: np.random.Generator, area: float) -> np.ndarray:
    """A filled star-shaped blob of about ``area`` px: radii smoothed over 24 angles."""
    n = 24
    radii = np.exp(np.convolve(np.tile(rng.normal(0, 0.35, n), 3), np.ones(5) / 5, "same")[n : 2 * n])
    # the polygon's area is n/2 sin(2 pi / n) * mean(r_i r_i+1), close to n/2 sin(2 pi / n) * mean(r^2)
    scale = math.sqrt(area / (0.5 * n * math.sin(2 * math.pi / n) * float(np.mean(radii**2))))
    aspect = rng.uniform(0.6, 1.6)
    angles = np.arange(n) * 2 * math.pi / n
    r = scale * radii
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    pts = np.stack([cx + r * np.cos(angles) * aspect**0.5, cy + r * np.sin(angles) / aspect**0.5], axis=1)
    canvas = np.zeros((h, w), np.uint8)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return canvas


def _silhouette(h: int, w: int, rng: np.random.Generator, height: float) -> np.ndarray:
    """An upright figure ``height`` px tall: a head (ellipse) on a tapered body, or a post with a
    lamp or statue on top; it stands on the bottom edge half of the time."""
    canvas = np.zeros((h, w), np.uint8)
    cx = rng.uniform(0.15, 0.85) * w
    foot = h - 1.0 if rng.random() < 0.5 else rng.uniform(0.6, 1.0) * (h - 1)
    top = foot - height
    if rng.random() < 0.7:  # a person or a statue: head, shoulders, body narrowing to the feet
        head = height * rng.uniform(0.11, 0.15)
        shoulders, feet = height * rng.uniform(0.2, 0.3), height * rng.uniform(0.1, 0.22)
        neck = top + 2 * head
        body = np.array([[cx - shoulders / 2, neck], [cx + shoulders / 2, neck], [cx + feet / 2, foot],
                         [cx - feet / 2, foot]])
        cv2.fillPoly(canvas, [np.round(body).astype(np.int32)], 1)
        cv2.ellipse(canvas, (int(round(cx)), int(round(top + head))), (int(round(0.8 * head)), int(round(head))),
                    0, 0, 360, 1, thickness=-1)
    else:  # a post or pole with something on top
        width = max(3.0, height * rng.uniform(0.03, 0.08))
        cv2.rectangle(canvas, (int(cx - width / 2), int(top)), (int(cx + width / 2), int(foot)), 1, thickness=-1)
        lamp = height * rng.uniform(0.06, 0.15)
        cv2.ellipse(canvas, (int(round(cx)), int(round(top + lamp))), (int(round(lamp * 1.3)), int(round(lamp))),
                    0, 0, 360, 1, thickness=-1)
    return canvas


def object_mask(size: Size, rng: np.random.Generator) -> np.ndarray:
    """The hole of an object removal: one or two filled blobs or upright silhouettes.

    Object-removal holes are solid, object-shaped and often large, unlike strokes: the mask mix
    that LaMa (Suvorov et al., WACV 2022) and MI-GAN (Sargsyan et al., ICCV 2023) add for this job.
    Each shape covers 3-35 % of the image; the union is dilated by 1-3 % of the shorter side, as a
    user's selection is drawn generously around the object. Returns bool (H, W), True = hole.
    """
    h, w = as_hw(size)
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(1 if rng.random() < 0.7 else 2):
        if rng.random() < 0.5:
            canvas |= _blob(h, w, rng, rng.uniform(0.03, 0.3) * h * w)
        else:
            canvas |= _silhouette(h, w, rng, rng.uniform(0.35, 0.9) * h)
    r = max(1, round(rng.uniform(0.01, 0.03) * min(h, w)))
    canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    if canvas.all():  # never the whole image
        canvas[: h // 2] = 0
    return canvas.astype(bool)


# --------------------------------------------------------------------------- dispatch


def _bucketed(
    size: Size,
    rng: np.random.Generator,
    *,
    bucket: int | None = None,
    touches_border: bool | None = None,
    **kwargs: Any,
) -> np.ndarray:
    if bucket is None or touches_border is None:
        raise ValueError("mask kind 'bucketed' needs bucket= (0..5) and touches_border= (True/False)")
    return bucketed_mask(size, bucket, touches_border, rng, **kwargs)


def _centre_box(size: Size, rng: np.random.Generator | None = None) -> np.ndarray:
    return box_mask(size, rng, centre=True)


def _free_form_box(size: Size, rng: np.random.Generator) -> np.ndarray:
    return free_form_mask(size, rng, with_box=True)


#: every generator as ``fn(size, rng, **kwargs) -> bool (H, W)``, by name
MASK_KINDS: dict[str, Callable[..., np.ndarray]] = {
    "free_form": free_form_mask,
    "free_form_box": _free_form_box,
    "irregular": irregular_mask,
    "box": box_mask,
    "object": object_mask,
    "centre_box": _centre_box,
    "bucketed": _bucketed,
}


def make_mask(kind: str, size: Size, rng: np.random.Generator, **kwargs: Any) -> np.ndarray:
    """Draw one mask of ``kind`` (a key of :data:`MASK_KINDS`); returns bool (H, W), True = hole.

    ``kind="bucketed"`` needs ``bucket=`` and ``touches_border=``; other kwargs go to the generator.
    """
    try:
        fn = MASK_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown mask kind {kind!r}; valid kinds: {', '.join(MASK_KINDS)}") from None
    return fn(size, rng, **kwargs)
