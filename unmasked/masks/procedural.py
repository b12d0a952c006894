"""Worn-mask templates drawn procedurally with OpenCV from an explicit ``rng``.

:data:`PROCEDURAL_KINDS`: surgical, n95, kn95, cloth, each annotated with the six key points of a
MaskTheFace template (Anwar & Raychowdhury, arXiv:2008.11104, 2020; :mod:`unmasked.masks.templates`),
so drawn and pictured templates go through the same homography onto a face. They are drawn
frontal only; the homography foreshortens them on turned faces.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from unmasked.masks.templates import Template, random_colour

PROCEDURAL_KINDS = ("surgical", "n95", "kn95", "cloth")


# canvas and key points at scale 1; ear loops and straps may reach into the margins
_CANVAS = (680, 520)  # (w, h)
_POINTS = np.array([[60, 110], [340, 40], [620, 110], [64, 350], [340, 490], [616, 350]], dtype=np.float64)


def _quad_curve(p0: np.ndarray, through: np.ndarray, p2: np.ndarray, n: int = 24) -> np.ndarray:
    """Quadratic Bezier from p0 to p2 passing through ``through`` at its middle, (n, 2)."""
    ctrl = 2 * through - (p0 + p2) / 2
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p2


def _closed_spline(points: np.ndarray, n: int = 16) -> np.ndarray:
    """Closed Catmull-Rom curve through ``points`` (k, 2), n samples per span."""
    k = len(points)
    out = []
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    for i in range(k):
        p0, p1, p2, p3 = points[i - 1], points[i], points[(i + 1) % k], points[(i + 2) % k]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    return np.concatenate(out)


def _jitter_colour(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 10) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)


def _ipoly(points: np.ndarray, s: float) -> np.ndarray:
    return np.round(points * s).astype(np.int32).reshape(-1, 1, 2)


def procedural_template(kind: str, rng: np.random.Generator, scale: float = 1.0) -> Template:
    """A mask template drawn with OpenCV: ``kind`` in :data:`PROCEDURAL_KINDS`.

    * surgical -- pleated rectangle with bound edges and side bands, light blue / white / green;
    * n95 -- white moulded cup with a nose clip and seams;
    * kn95 -- white folded mask with a centre fold and stitched border;
    * cloth -- rounded mask with a centre seam, solid, striped or dotted in random colours.

    Colours, patterns and fabric grain come from ``rng``. ``scale`` sizes the canvas (1.0 =
    680 x 520 px); small scales are cheap for small faces.
    """
    if kind not in PROCEDURAL_KINDS:
        raise ValueError(f"unknown procedural mask {kind!r}; choose from {', '.join(PROCEDURAL_KINDS)}")
    s = float(scale)
    w, h = max(8, round(_CANVAS[0] * s)), max(8, round(_CANVAS[1] * s))
    a, b, c, d, e, f = _POINTS
    rgb = np.zeros((h, w, 3), np.float64)
    alpha = np.zeros((h, w), np.uint8)
    lt = max(1, round(3 * s))
    shade = np.ones((h, w))  # multiplicative shading drawn into a separate layer

    if kind in ("surgical", "cloth"):
        if kind == "surgical":
            top, bottom = _quad_curve(a, b - [0, 4], c), _quad_curve(f, e + [0, 16], d)
        else:
            top, bottom = _quad_curve(a + [30, -5], b, c + [-30, -5]), _quad_curve(f + [-40, 0], e, d + [40, 0])
        outline = np.concatenate([top, bottom])
        if kind == "cloth":
            outline = _closed_spline(outline[:: 4], 8)
    elif kind == "n95":
        outline = _closed_spline(np.array([b, c + [-20, -5], f + [-15, 20], e + [0, 5], d + [15, 20], a + [20, -5]]))
    else:  # kn95: straight edges, pointed chin
        outline = np.array([a, b - [0, 8], c, f, e + [0, 6], d])
    cv2.fillPoly(alpha, [_ipoly(outline, s)], 255, lineType=cv2.LINE_8)

    xs = (np.arange(w) / s - b[0]) / ((c[0] - a[0]) / 2)
    shade *= 1.0 - 0.16 * np.clip(xs, -1.2, 1.2)[None, :] ** 2  # the mask wraps round the face
    if kind == "surgical":
        base = _jitter_colour(rng, [(150, 200, 232), (236, 238, 240), (152, 204, 176)][rng.integers(0, 3)], 8)
        rgb[:] = base
        for frac in (0.3, 0.47, 0.64):  # pleats: a shadow under each fold and a highlight above it
            line = top + (bottom[::-1] - top) * frac
            cv2.polylines(shade, [_ipoly(line, s)], False, 0.80, max(1, round(7 * s)), cv2.LINE_AA)
            cv2.polylines(shade, [_ipoly(line - [0, 8], s)], False, 1.06, max(1, round(4 * s)), cv2.LINE_AA)
        for edge in (top, bottom):  # bound edges
            cv2.polylines(shade, [_ipoly(edge, s)], False, 0.9, max(1, round(22 * s)), cv2.LINE_AA)
        for x0 in (a[0], c[0]):  # side bands where the ear loops attach
            cv2.rectangle(shade, (round((x0 - 14) * s), 0), (round((x0 + 14) * s), h), 0.9, -1)
        loop = base * 0.2 + 200
        for p, q, sign in ((a, d, -1), (c, f, 1)):
            arc = _quad_curve(p + [0, 8], (p + q) / 2 + [sign * 52, 0], q - [0, 8])
            cv2.polylines(rgb, [_ipoly(arc, s)], False, loop.tolist(), lt, cv2.LINE_AA)
            cv2.polylines(alpha, [_ipoly(arc, s)], False, 255, lt, cv2.LINE_8)
    elif kind == "n95":
        rgb[:] = _jitter_colour(rng, (238, 236, 230), 6)
        centre = np.array([b[0], (b[1] + e[1]) / 2 + 20]) * s
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot((xx - centre[0]) / (280 * s), (yy - centre[1]) / (240 * s))
        shade *= 1.05 - 0.2 * np.clip(r, 0, 1.2) ** 2  # moulded cup: bright centre, darker rim
        for k in (0.55, 0.8):
            cv2.ellipse(shade, (round(centre[0]), round(centre[1])), (round(280 * k * s), round(230 * k * s)),
                        0, 200, 340, 0.9, max(1, round(3 * s)), cv2.LINE_AA)
        clip = _quad_curve(b + [-70, 32], b + [0, 18], b + [70, 32])
        cv2.polylines(rgb, [_ipoly(clip, s)], False, (170, 172, 176), max(1, round(10 * s)), cv2.LINE_AA)
    elif kind == "kn95":
        rgb[:] = _jitter_colour(rng, (240, 240, 238), 6)
        half = np.array([b - [0, 8], e + [0, 6], d, a]).reshape(-1, 1, 2)
        cv2.fillPoly(shade, [np.round(half * s).astype(np.int32)], 0.92, cv2.LINE_AA)
        cv2.line(shade, tuple(np.round((b - [0, 8]) * s).astype(int)), tuple(np.round((e + [0, 6]) * s).astype(int)),
                 0.72, max(1, round(4 * s)), cv2.LINE_AA)
        inset = (outline - outline.mean(axis=0)) * 0.93 + outline.mean(axis=0)
        closed = np.concatenate([inset, inset[:1]])
        for p, q in zip(closed[:-1], closed[1:], strict=True):  # stitched border: a row of dots
            n = int(np.hypot(*(q - p)) / 18)
            for t in np.linspace(0, 1, max(n, 2)):
                x, y = (p + (q - p) * t) * s
                cv2.circle(shade, (round(x), round(y)), max(1, round(2.2 * s)), 0.6, -1, cv2.LINE_AA)
        for p, q, sign in ((a, d, -1), (c, f, 1)):
            arc = _quad_curve(p + [0, 10], (p + q) / 2 + [sign * 50, 0], q - [0, 10])
            cv2.polylines(rgb, [_ipoly(arc, s)], False, (236, 236, 236), lt, cv2.LINE_AA)
            cv2.polylines(alpha, [_ipoly(arc, s)], False, 255, lt, cv2.LINE_8)
    else:  # cloth
        pattern = rng.choice(["solid", "stripes", "dots"])
        first = random_colour(rng)
        rgb[:] = first
        if pattern == "stripes":
            second = random_colour(rng)
            period = rng.uniform(30, 70) * s
            angle = rng.choice([0.0, np.pi / 4, -np.pi / 4, np.pi / 2])
            yy, xx = np.mgrid[0:h, 0:w]
            phase = (xx * math.sin(angle) + yy * math.cos(angle)) / period
            rgb[(phase % 1.0) < rng.uniform(0.3, 0.6)] = second
        elif pattern == "dots":
            second = random_colour(rng)
            step = rng.uniform(40, 80)
            radius = max(1, round(rng.uniform(0.15, 0.3) * step * s))
            for y in np.arange(0, _CANVAS[1], step):
                for x in np.arange((y // step % 2) * step / 2, _CANVAS[0], step):
                    cv2.circle(rgb, (round(x * s), round(y * s)), radius, second.tolist(), -1, cv2.LINE_AA)
        seam = _quad_curve(b, (b + e) / 2 + [6, 0], e)
        cv2.polylines(shade, [_ipoly(seam, s)], False, 0.75, max(1, round(4 * s)), cv2.LINE_AA)

    grain = rng.normal(1.0, 0.025, (h, w))  # fabric grain
    out = np.clip(rgb * (shade * grain)[..., None], 0, 255).astype(np.uint8)
    return Template(kind, np.dstack([out, alpha]), _POINTS * s)
