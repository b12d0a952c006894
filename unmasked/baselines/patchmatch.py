"""Exemplar-based hole filling with multi-scale PatchMatch (a classical, non-learned baseline).

The hole is synthesised from patches of the known part of the same image, coarse to fine:

* Y. Wexler, E. Shechtman and M. Irani, "Space-Time Completion of Video", IEEE TPAMI 29(3),
  2007 -- the iterative scheme: alternate a nearest-neighbour search for every patch that
  overlaps the hole with *voting*, where each hole pixel becomes the (similarity-weighted)
  average of the pixels that the overlapping patches' matches put there; run it on an image
  pyramid and start each scale from the coarser one.
* C. Barnes, E. Shechtman, A. Finkelstein and D. B. Goldman, "PatchMatch: A Randomized
  Correspondence Algorithm for Structural Image Editing", ACM TOG 28(3) (SIGGRAPH 2009) --
  the nearest-neighbour field (NNF) search: random initialisation, then alternating-order
  sweeps of propagation from the neighbours and random search in shrinking windows.

* A. Newson, A. Almansa, M. Fradet, Y. Gousseau and P. Pérez, "Video Inpainting of Complex
  Scenes", SIAM J. Imaging Sciences 7(4), 2014 -- texture features (``texture``): at coarse
  scales a noisy area and a flat one of the same mean colour look alike, so Wexler's iterations
  fill a hole in grass or foliage with the flat sky next to it; adding each pixel's mean absolute
  gradient, computed at full resolution, to the patch distance keeps them apart.

Target patches are all ``p x p`` patches that overlap the hole; source patches are those that
lie entirely in the known region. At the coarsest scale the hole is first filled ring by ring
from its boundary inwards (onion peel, each pixel copied from the best match of its partly
known patch), which gives the first search something better than a blur to match; the NNF
found at one scale, upsampled by two, initialises the next. Images too small, or holes too
scattered, to hold a single whole 3 x 3 known patch fall back to cv2.inpaint (Telea). The kernels are compiled with numba (``cache=True``, so the JIT cost is paid once per
machine) and run single-threaded, which keeps results deterministic for a given ``seed``.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

__all__ = ["patchmatch_inpaint"]

#: Separable binomial weights of the known-pixel average that builds a coarser scale.
_BLUR = np.array([1, 3, 3, 1], np.float32)
#: The exhaustive coarsest-scale initialisation compares each hole pixel with at most this
#: many source patches, and with fewer when hole pixels x sources would exceed the budget.
_ONION_MAX_SOURCES, _ONION_MIN_SOURCES, _ONION_BUDGET = 2000, 100, 4_000_000


def patchmatch_inpaint(
    rgb: np.ndarray,
    hole: np.ndarray,
    *,
    patch_size: int = 7,
    seed: int = 0,
    em_iters: int = 3,
    em_iters_coarse: int = 8,
    pm_iters: int = 2,
    min_size: int = 32,
    weighted: bool = True,
    guide: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    texture: float = 0.0,
) -> np.ndarray:
    """Fill ``hole`` in ``rgb`` by multi-scale PatchMatch + voting (Wexler 2007, Barnes 2009).

    Args:
        rgb: uint8 image, shape (H, W, 3).
        hole: bool mask, shape (H, W); True marks the pixels to fill.
        patch_size: odd patch side ``p`` (>= 3); patches are ``p x p``.
        seed: seed of the randomised search; equal inputs and seed give equal outputs.
        em_iters: search/vote iterations at the finest scale.
        em_iters_coarse: search/vote iterations at the coarsest scale; the scales in between
            interpolate linearly.
        pm_iters: PatchMatch sweeps (propagation + random search) per iteration.
        min_size: the pyramid stops before its shorter side drops below this many pixels.
        weighted: weight each vote by ``exp(-d / 2 sigma^2)`` of its patch distance ``d``,
            with ``sigma^2`` the 75th percentile of the distances (Wexler et al.); plain
            averaging if False.
        guide: uint8 (H, W, 3) or None: a first fill of the hole (e.g. a network's) that the
            coarsest scale starts from instead of the onion peel, so the layout of structure and
            colour is the guide's and the texture is copied from the photo.
        avoid: bool (H, W) or None: known pixels no source patch may contain (e.g. people's
            faces, which copied onto a wall read as faces); they still count as the hole's
            context. Ignored when it leaves no whole known patch to copy from.
        texture: weight of texture features in the patch distance (Newson et al. 2014); 0 = off.
            Each pixel also carries the mean absolute horizontal and vertical grey-level
            differences over a window as wide as the coarsest scale's pixel, computed on the
            photo at full resolution and carried down the pyramid like the colours, so that at
            coarse scales a textured area no longer matches a smooth one of the same mean colour
            (what makes Wexler's iterations settle on smooth sources in large holes). The
            features are matched and voted with the colours, scaled by ``sqrt(texture)``.

    Returns:
        uint8 image, shape (H, W, 3): a copy of ``rgb`` with the hole filled; pixels outside
        the hole are byte-identical to the input.

    Raises:
        ValueError: on malformed inputs, or when the hole covers the whole image.
    """
    rgb, hole = _check_inputs(rgb, hole, patch_size)
    if guide is not None and guide.shape != rgb.shape:
        raise ValueError(f"guide must have the image's shape {rgb.shape}, got {guide.shape}")
    out = rgb.copy()
    if not hole.any():
        return out
    if hole.all():
        raise ValueError("the hole covers the whole image: there are no known pixels to copy from")

    if avoid is not None:
        avoid = np.asarray(avoid, bool)
        if avoid.shape != hole.shape:
            raise ValueError(f"avoid must have shape {hole.shape}, got {avoid.shape}")
        avoid = avoid & ~hole
        if not avoid.any() or not _valid_sources(hole | avoid, 1).any():
            avoid = None
    blocked = hole if avoid is None else hole | avoid

    # Shrink the patch until the known region holds at least one whole patch (small images,
    # huge holes); with no room even for 3 x 3 patches, fall back to diffusion (Telea).
    p = patch_size
    while p >= 3 and not _valid_sources(blocked, p // 2).any():
        p -= 2
    if p < 3:
        return _telea(rgb, hole)

    r = p // 2
    start = rgb.astype(np.float32)
    if texture > 0:
        start = np.concatenate([start, _texture_features(rgb, hole, r, min_size, texture)], axis=2)
    levels = _pyramid(start, hole, r, min_size, avoid)
    _seed_rng(seed % 2**32)
    n = len(levels)
    nnf = np.empty((0, 0, 2), np.int32)
    for i in range(n - 1, -1, -1):  # coarse to fine
        img, lhole, lavoid = levels[i]
        valid = _valid_sources(lhole | lavoid, r)
        targets = _targets(lhole, r)
        sources = np.argwhere(valid).astype(np.int32)
        if i == n - 1 and guide is not None:
            # Coarsest scale: start from the guide, resized to this scale.
            small = cv2.resize(guide, (lhole.shape[1], lhole.shape[0]), interpolation=cv2.INTER_AREA)
            img[lhole, :3] = small.astype(np.float32)[lhole]
            if img.shape[2] > 3:  # the hole's texture features: the known pixels' mean
                img[lhole, 3:] = img[~lhole, 3:].mean(axis=0)
            nnf = _init_nnf(lhole.shape, targets, sources)
        elif i == n - 1:
            # Coarsest scale: fill the hole ring by ring from its boundary inwards first.
            budget = _ONION_BUDGET // int(lhole.sum())
            pool = sources[_subset(len(sources), min(max(budget, _ONION_MIN_SOURCES), _ONION_MAX_SOURCES))]
            _onion_fill(img, lhole, pool, r)
            nnf = _init_nnf(lhole.shape, targets, sources)
        else:
            nnf = _upsample_nnf(nnf, lhole.shape, valid, targets, sources, r)
            _vote(img, lhole, targets, nnf, np.zeros(len(targets), np.float32), 1.0, r)
        iters = em_iters if n == 1 else round(em_iters + (em_iters_coarse - em_iters) * i / (n - 1))
        for _ in range(iters):
            cost = _patchmatch(img, valid, targets, nnf, r, pm_iters)
            two_sigma2 = 2.0 * float(np.percentile(cost, 75)) + 1e-6 if weighted else np.inf
            _vote(img, lhole, targets, nnf, cost, two_sigma2, r)

    filled = np.clip(levels[0][0][..., :3] + 0.5, 0, 255).astype(np.uint8)
    out[hole] = filled[hole]
    return out


# ------------------------------------------------------------------------ setup (numpy)


def _check_inputs(rgb: np.ndarray, hole: np.ndarray, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return C-contiguous (H, W, 3) uint8 and (H, W) bool arrays."""
    rgb, hole = np.asarray(rgb), np.asarray(hole)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    if hole.shape != rgb.shape[:2]:
        raise ValueError(f"hole must have shape {rgb.shape[:2]}, got {hole.shape}")
    if patch_size < 3 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 3, got {patch_size}")
    return np.ascontiguousarray(rgb), np.ascontiguousarray(hole, dtype=bool)


def _telea(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """cv2.inpaint(TELEA) of a (H, W, 3) uint8 image; pixels outside ``hole`` are kept."""
    out = rgb.copy()
    out[hole] = cv2.inpaint(rgb, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)[hole]
    return out


def _texture_features(rgb: np.ndarray, hole: np.ndarray, r: int, min_size: int, weight: float) -> np.ndarray:
    """(H, W, 2) float32: Newson et al.'s texture features, ``sqrt(weight)`` times the mean |dI/dx|
    and |dI/dy| of the grey image over a square window as wide as the coarsest scale's pixel
    (2^(scales - 1)), from the known pixels only (differences that touch the hole do not count).

    A. Newson, A. Almansa, M. Fradet, Y. Gousseau and P. Pérez, "Video Inpainting of Complex
    Scenes", SIAM J. Imaging Sciences 7(4), 2014, section 4.2."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    known = ~hole
    gx, gy = np.zeros_like(grey), np.zeros_like(grey)
    vx, vy = np.zeros(grey.shape, np.float32), np.zeros(grey.shape, np.float32)
    gx[:, :-1] = np.abs(np.diff(grey, axis=1))
    gy[:-1] = np.abs(np.diff(grey, axis=0))
    vx[:, :-1] = known[:, :-1] & known[:, 1:]
    vy[:-1] = known[:-1] & known[1:]
    scales, side = 1, min(hole.shape)
    while _can_halve(side, r, min_size):
        scales, side = scales + 1, side // 2
    k = (2 ** (scales - 1),) * 2
    feats = []
    for g, v in ((gx, vx), (gy, vy)):
        num = cv2.boxFilter(g * v, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
        den = cv2.boxFilter(v, -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
        feats.append(np.where(den > 0, num / np.maximum(den, 1e-6), 0.0))
    return (np.sqrt(weight) * np.stack(feats, axis=2)).astype(np.float32)


def _can_halve(side: int, r: int, min_size: int) -> bool:
    """Whether a scale whose shorter side is ``side`` gets a coarser one: the pyramid's size rule."""
    return side // 2 >= max(min_size, 4 * r + 2)


def _pyramid(img: np.ndarray, hole: np.ndarray, r: int, min_size: int,
             avoid: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Scales [(image (h, w, C) float32, hole (h, w) bool, avoid (h, w) bool)], finest first,
    halving each time.

    A coarse pixel averages the known fine pixels in the 4 x 4 window around its 2 x 2 block
    (binomial weights) and is a hole only if that window holds none, so holes shrink a little
    faster than the image; it is to be avoided if any pixel of that window is. Coarsening stops
    before the shorter side drops below ``min_size``, or when the coarser hole would vanish or
    leave no whole known patch to copy from.
    """
    avoid = np.zeros_like(hole) if avoid is None else avoid
    levels = [(img.copy(), hole.copy(), avoid.copy())]
    while _can_halve(min(hole.shape), r, min_size):
        pad = ((0, hole.shape[0] % 2), (0, hole.shape[1] % 2))
        known = np.pad(~hole, pad).astype(np.float32)
        num = _blur_half(np.pad(img, (*pad, (0, 0))) * known[..., None])
        den = _blur_half(known)
        hole = den <= 0
        avoid = (_blur_half(np.pad(avoid, pad).astype(np.float32)) > 0) & ~hole
        if not hole.any() or hole.all() or not _valid_sources(hole | avoid, r).any():
            break
        img = np.ascontiguousarray(num / np.maximum(den, 1e-12)[..., None], dtype=np.float32)
        levels.append((img, hole, avoid))
    return levels


def _blur_half(a: np.ndarray) -> np.ndarray:
    """Binomial 4 x 4 blur of an even-sized (H, W[, C]) array, sampled at the 2 x 2 block centres."""
    k = len(_BLUR) // 2
    return cv2.sepFilter2D(a, -1, _BLUR, _BLUR, anchor=(k, k), borderType=cv2.BORDER_CONSTANT)[1::2, 1::2]


def _valid_sources(hole: np.ndarray, r: int) -> np.ndarray:
    """(H, W) bool: patch centres whose whole (2r+1)^2 patch is inside image and known."""
    h, w = hole.shape
    valid = np.zeros((h, w), bool)
    if h <= 2 * r or w <= 2 * r:
        return valid
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    known = cv2.erode((~hole).astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    valid[r : h - r, r : w - r] = known[r : h - r, r : w - r] > 0
    return valid


def _targets(hole: np.ndarray, r: int) -> np.ndarray:
    """(N, 2) int32 (y, x) centres, raster order, of in-image patches overlapping the hole.

    Centres are limited to [r, H-r) x [r, W-r); every hole pixel, even on the image border,
    is still covered by at least one of them.
    """
    h, w = hole.shape
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    touch = cv2.dilate(hole.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    inner = np.zeros_like(touch)
    inner[r : h - r, r : w - r] = True
    return np.argwhere(touch & inner).astype(np.int32)


# ------------------------------------------------------------------------ kernels (numba)
#
# The NNF is dense: nnf[y, x] = (sy, sx), the source centre matched to the target patch
# centred at (y, x), or (-1, -1) where (y, x) is not a target centre.


@njit(cache=True)
def _seed_rng(seed: int) -> None:
    np.random.seed(seed)


@njit(cache=True)
def _subset(n: int, k: int) -> np.ndarray:
    """Sorted indices of a random k-subset of range(n) (all of them if n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.permutation(n)[:k])


@njit(cache=True)
def _onion_fill(img: np.ndarray, hole: np.ndarray, sources: np.ndarray, r: int) -> None:
    """Fill the hole of ``img`` (H, W, 3) in place, ring by ring from its boundary inwards.

    Each pixel of the current ring copies the corresponding pixel of the source patch (from
    ``sources``, (M, 2) centres) closest in SSD over the known and already filled pixels
    of its own patch (exhaustive search; run only at the coarsest scale).
    """
    h, w = hole.shape
    filled = ~hole
    ring = np.empty((h * w, 2), np.int64)
    while True:
        n = 0
        for y in range(h):
            for x in range(w):
                if not filled[y, x]:
                    for yy in range(max(y - 1, 0), min(y + 2, h)):
                        for xx in range(max(x - 1, 0), min(x + 2, w)):
                            if filled[yy, xx] and (n == 0 or ring[n - 1, 0] != y or ring[n - 1, 1] != x):
                                ring[n, 0], ring[n, 1] = y, x
                                n += 1
        if n == 0:
            return
        for k in range(n):
            y, x = ring[k, 0], ring[k, 1]
            ty, tx = min(max(y, r), h - r - 1), min(max(x, r), w - r - 1)
            best, bj = np.inf, 0
            for j in range(len(sources)):
                sy, sx = sources[j, 0], sources[j, 1]
                d = 0.0
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        if filled[ty + dy, tx + dx]:
                            for c in range(img.shape[2]):
                                v = img[ty + dy, tx + dx, c] - img[sy + dy, sx + dx, c]
                                d += v * v
                    if d >= best:
                        break
                if d < best:
                    best, bj = d, j
            for c in range(img.shape[2]):
                img[y, x, c] = img[sources[bj, 0] + y - ty, sources[bj, 1] + x - tx, c]
        for k in range(n):
            filled[ring[k, 0], ring[k, 1]] = True


@njit(cache=True)
def _init_nnf(shape: tuple[int, int], targets: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """(H, W, 2) int32 NNF matching every target to a uniformly random source centre."""
    nnf = np.full((shape[0], shape[1], 2), -1, np.int32)
    for k in range(len(targets)):
        j = np.random.randint(0, len(sources))
        nnf[targets[k, 0], targets[k, 1], 0] = sources[j, 0]
        nnf[targets[k, 0], targets[k, 1], 1] = sources[j, 1]
    return nnf


@njit(cache=True)
def _upsample_nnf(
    coarse: np.ndarray, shape: tuple[int, int], valid: np.ndarray, targets: np.ndarray, sources: np.ndarray, r: int
) -> np.ndarray:
    """(H, W, 2) NNF from the (h, w, 2) NNF of the next coarser scale: the offset of a
    target's parent, doubled. Matches that would leave the known region become random."""
    h, w = shape
    ch, cw = coarse.shape[0], coarse.shape[1]
    nnf = np.full((h, w, 2), -1, np.int32)
    for k in range(len(targets)):
        y, x = targets[k, 0], targets[k, 1]
        py, px = min(max(y // 2, r), ch - r - 1), min(max(x // 2, r), cw - r - 1)
        sy, sx = -1, -1
        if coarse[py, px, 0] >= 0:
            sy = min(max(2 * coarse[py, px, 0] + y - 2 * py, r), h - r - 1)
            sx = min(max(2 * coarse[py, px, 1] + x - 2 * px, r), w - r - 1)
        if sy < 0 or not valid[sy, sx]:
            j = np.random.randint(0, len(sources))
            sy, sx = sources[j, 0], sources[j, 1]
        nnf[y, x, 0], nnf[y, x, 1] = sy, sx
    return nnf


@njit(cache=True)
def _ssd(img: np.ndarray, ty: int, tx: int, sy: int, sx: int, r: int, bound: float) -> float:
    """Sum of squared differences (every channel: RGB, and texture features when present) of the
    patches centred at (ty, tx) and (sy, sx); stops early (returning a value >= bound) once the
    partial sum reaches ``bound``."""
    d = 0.0
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            for c in range(img.shape[2]):
                v = img[ty + dy, tx + dx, c] - img[sy + dy, sx + dx, c]
                d += v * v
        if d >= bound:
            return d
    return d


@njit(cache=True)
def _patchmatch(
    img: np.ndarray, valid: np.ndarray, targets: np.ndarray, nnf: np.ndarray, r: int, iters: int
) -> np.ndarray:
    """Improve ``nnf`` in place by PatchMatch sweeps; return the (N,) float32 patch SSDs.

    Even sweeps go in raster order and propagate from the left and upper neighbours, odd
    sweeps in reverse from the right and lower ones; each target then tries random
    candidates around its best match in windows halving from the image size down to 1.
    """
    h, w = valid.shape
    n = len(targets)
    cost = np.empty(n, np.float32)
    for k in range(n):
        y, x = targets[k, 0], targets[k, 1]
        cost[k] = _ssd(img, y, x, nnf[y, x, 0], nnf[y, x, 1], r, np.inf)
    for it in range(iters):
        step = 1 if it % 2 == 0 else -1
        for kk in range(n):
            k = kk if step == 1 else n - 1 - kk
            y, x = targets[k, 0], targets[k, 1]
            by, bx, best = nnf[y, x, 0], nnf[y, x, 1], cost[k]
            for j in range(2):  # propagation: a neighbour's match, shifted back by one
                ny, nx = (y, x - step) if j == 0 else (y - step, x)
                if 0 <= ny < h and 0 <= nx < w and nnf[ny, nx, 0] >= 0:
                    cy, cx = nnf[ny, nx, 0] + y - ny, nnf[ny, nx, 1] + x - nx
                    if 0 <= cy < h and 0 <= cx < w and valid[cy, cx] and (cy != by or cx != bx):
                        d = _ssd(img, y, x, cy, cx, r, best)
                        if d < best:
                            by, bx, best = cy, cx, d
            rad = max(h, w)
            while rad >= 1:  # random search in shrinking windows
                cy = min(max(by + np.random.randint(-rad, rad + 1), r), h - r - 1)
                cx = min(max(bx + np.random.randint(-rad, rad + 1), r), w - r - 1)
                if valid[cy, cx] and (cy != by or cx != bx):
                    d = _ssd(img, y, x, cy, cx, r, best)
                    if d < best:
                        by, bx, best = cy, cx, d
                rad //= 2
            nnf[y, x, 0], nnf[y, x, 1], cost[k] = by, bx, best
    return cost


@njit(cache=True)
def _vote(
    img: np.ndarray, hole: np.ndarray, targets: np.ndarray, nnf: np.ndarray, cost: np.ndarray, two_sigma2: float, r: int
) -> None:
    """Set every hole pixel of ``img`` (H, W, C) to the average, weighted by exp(-cost / two_sigma2),
    of the pixels that the matches of its overlapping target patches ((N,) ``cost``) hold there."""
    h, w = hole.shape
    nc = img.shape[2]
    acc = np.zeros((h, w, nc))
    wsum = np.zeros((h, w))
    for k in range(len(targets)):
        y, x = targets[k, 0], targets[k, 1]
        sy, sx = nnf[y, x, 0], nnf[y, x, 1]
        wt = np.exp(-cost[k] / two_sigma2)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if hole[y + dy, x + dx]:
                    for c in range(nc):
                        acc[y + dy, x + dx, c] += wt * img[sy + dy, sx + dx, c]
                    wsum[y + dy, x + dx] += wt
    for y in range(h):
        for x in range(w):
            if hole[y, x] and wsum[y, x] > 0:
                for c in range(nc):
                    img[y, x, c] = acc[y, x, c] / wsum[y, x]
