"""Sketches for DeepFill v2's user-guided mode: edge maps taken from the image, and rough versions.

DeepFill v2 (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019,
Sec. 3.4) trains its interactive model with HED edge maps of the training image, kept only
inside the hole, as the extra "sketch" input channel. No HED network ships here, so the
edges are Canny edges of a slightly smoothed grey image: thin (1 px), binary and cheap
enough to draw afresh for every training sample. A user's sketch is rougher than that, and
often absent, so training also sees sketches that are thinned (edge pixels of short or weak
segments dropped), broken (gaps cut into lines) and jittered (lines moved by a pixel or
two), and none at all (:func:`training_sketch`).

A sketch is bool (H, W), True = line, and is zero outside the hole (the reference code
multiplies its edge map by the mask; :func:`unmasked.pipelines.fill.fill_array` does the same).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Gaussian sigma (px, relative to a 128-px image) and Canny thresholds of :func:`edge_sketch`
EDGE_SIGMA = 1.2
CANNY_LOW, CANNY_HIGH = 60, 140


def edge_map(rgb: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Canny edges (bool (H, W)) of uint8 (H, W, 3) ``rgb`` after a Gaussian blur.

    ``sigma`` defaults to :data:`EDGE_SIGMA` scaled by ``max(H, W) / 128``, so the same
    structures are found at any resolution.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"edge_map needs uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if sigma is None:
        sigma = EDGE_SIGMA * max(rgb.shape[:2]) / 128
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.Canny(grey, CANNY_LOW, CANNY_HIGH, L2gradient=True) > 0


def edge_sketch(rgb: np.ndarray, hole: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The "true" sketch: the image's own edges inside ``hole`` (bool (H, W))."""
    return edge_map(rgb, sigma) & hole.astype(bool)


def perturb_sketch(sketch: np.ndarray, rng: np.random.Generator, *, drop: float = 0.25, breaks: float = 0.04,
                   jitter: float = 1.5) -> np.ndarray:
    """A hand-drawn-like version of ``sketch``: some strokes dropped, lines broken, moved.

    ``drop``: chance that each connected stroke is removed; ``breaks``: gaps per line pixel
    (each gap erases a disc of radius 1-3 px); ``jitter``: standard deviation (px) of a
    smooth random displacement field. Returns bool (H, W).
    """
    out = sketch.astype(np.uint8)
    if not out.any():
        return out.astype(bool)
    n, labels = cv2.connectedComponents(out, connectivity=8)
    keep = np.concatenate([[False], rng.random(n - 1) >= drop])
    out = keep[labels].astype(np.uint8)
    ys, xs = np.nonzero(out)
    for k in np.flatnonzero(rng.random(len(ys)) < breaks):
        cv2.circle(out, (int(xs[k]), int(ys[k])), int(rng.integers(1, 4)), 0, -1)
    if jitter > 0 and out.any():
        h, w = out.shape
        coarse = rng.normal(0.0, jitter, size=(2, max(2, h // 16), max(2, w // 16))).astype(np.float32)
        dy, dx = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse)
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
        out = cv2.remap(out, gx + dx, gy + dy, cv2.INTER_NEAREST, borderValue=0)
    return out.astype(bool)


def training_sketch(rgb: np.ndarray, hole: np.ndarray, rng: np.random.Generator, *, p_none: float = 0.25,
                    p_rough: float = 0.5) -> np.ndarray:
    """The sketch of one training sample: none (``p_none``), a rough one (``p_rough``) or the true edges.

    Without a sketch the input channel is all zeros, exactly the input of the sketch-less
    model, so one network serves both uses.
    """
    hole = hole.astype(bool)
    u = rng.random()
    if u < p_none:
        return np.zeros(hole.shape, bool)
    sketch = edge_sketch(rgb, hole)
    if u < p_none + p_rough:
        sketch = perturb_sketch(sketch, rng, drop=rng.uniform(0.0, 0.5), breaks=rng.uniform(0.0, 0.08),
                                jitter=rng.uniform(0.0, 2.0)) & hole
    return sketch


def chamfer_distance(edges: np.ndarray, sketch: np.ndarray, region: np.ndarray) -> float:
    """Symmetric mean Chamfer distance (px) between two edge maps, counted inside ``region``.

    The mean distance from each sketch pixel to the nearest edge pixel and from each edge
    pixel to the nearest sketch pixel, averaged: 0 when the two coincide, about ``d`` for
    two parallel lines ``d`` px apart. Returns NaN when either map has no pixel in ``region``.
    """
    region = region.astype(bool)
    a, b = edges.astype(bool) & region, sketch.astype(bool) & region
    if not a.any() or not b.any():
        return float("nan")
    # distanceTransform measures the distance to the nearest zero pixel
    to_a = cv2.distanceTransform((~a).astype(np.uint8), cv2.DIST_L2, 5)
    to_b = cv2.distanceTransform((~b).astype(np.uint8), cv2.DIST_L2, 5)
    return float(0.5 * (to_a[b].mean() + to_b[a].mean()))
