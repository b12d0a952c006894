"""A mean face, and the face's structure taken from it where a worn mask hid the face's own.

**Why.** Under a worn mask the fill model paints the lower face at 128², and on real photos it
often paints it as several half-mouths stacked in horizontal bands: it is unsure where the
mouth is, and the adversarial loss it was trained with makes it commit to more than one place.
``unmask`` already knows where the mouth is: FaceMesh's guess of the hidden landmarks
(:func:`unmasked.data.landmark_guide.unmasked_guess`). A mean face, warped so that its
landmarks land on that guess, has one nose, one closed mouth and a chin exactly there.

**The mean face** (:func:`build_mean_face`) is the classic shape-normalised average of face
photographs (Galton's composites, 1878; Benson & Perrett, "Extracting prototypical facial images
from exemplars", Perception 1993): the mean of the faces' 68 landmarks is taken, each face is
warped piecewise-affinely (over the Delaunay triangles of its landmarks and of the image's
border) so its landmarks land on that mean, and the warped faces are averaged. Averaging aligned
faces keeps the structure every face shares (the lips' outline, nostrils, the chin's shadow)
sharp and averages away what is one person's. Only closed mouths are averaged
(:data:`MAX_MOUTH_OPEN`): under a mask FaceMesh cannot see the mouth, and its guess is a closed one.

**Its use** (:func:`structure_from_mean_face`): two bands, split by a Gaussian of
:data:`STRUCTURE_SIGMA` px at a 256² face (Burt & Adelson's Laplacian-pyramid split, 1983; the
scene filler's ``layout_patchmatch`` splits its fill the same way). Below it the fill model's
colour and shading are kept; above it, inside the face's outline, the warped mean face's
luminance detail replaces the model's. The bands and doubled mouths live above the split, so
they go; the person's skin tone and the photo's light, which the model matches to the visible
face, stay. It is the idea of LaFIn (Yang, Qi & Shi, arXiv:1911.11394, 2019: the landmarks say
where the parts are) done by warping instead of by a network, and of the two-step face
hallucination of Liu, Shum & Freeman (IJCV 2007: a global face model for the low band, detail
added on top), with the roles of the bands swapped: the low band is the person's, the structure
is the mean's. Measured in the README ("The face's structure from a mean face"). Since session
53 ``unmask`` also takes the mean face's colour detail above the split (the lips' redness with a
crisp edge), at the photo's own saturation (:data:`MEAN_CHROMA`; README, "The mean face's colour
detail").

**Its texture restored** (:func:`texture_enhance`, the default mean face since session 53): an
average of 1,171 faces is smoother than any one of them, because each face's fine edges lie a
pixel or two from the others' and cancel. The texture-enhanced prototype of Tiddeman, Burt &
Perrett ("Prototyping and transforming facial textures for perception research", IEEE CG&A 2001)
puts back the contrast a face has at each place and scale: the mean face is split into
Laplacian-pyramid bands (:data:`TEXTURE_SIGMAS`), each band's local amplitude (its absolute value
smoothed) is measured on the mean and on every averaged face, and the mean's band is scaled by the
faces' mean amplitude over its own (at most :data:`TEXTURE_CAP` times). The lips' outline, the
nostrils and the chin's crease come back at a photograph's crispness, where they are in every
face; the sign of each band stays the mean's, so nothing that is one person's is copied. Only the
finest bands (:data:`TEXTURE_BANDS`, below 2 px at 256²) are enhanced: the coarser ones carry the
shape of the mean's mouth and nose, and enhancing them too moved the identity distance past the
issue's bar. Only inside the face's outline shrunk by :data:`TEXTURE_INSET` px: at the jaw's
contour the mean face meets its blurred background, and the enhanced edge drew a line across real
cheeks where FaceMesh's jaw guess was off.

**Only where the fill is banded** (``unmask --mean-face auto``): the mean face costs identity (its
nose and mouth are nobody's), so it is used only on faces whose fill shows the bands it removes,
measured by :func:`horizontal_band_ratio`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from scipy.interpolate import LinearNDInterpolator

from unmasked.faces.ear_loops import cielab
from unmasked.faces.landmarks import disc, face_outline, mouth_opening

#: side of the mean face (an FFHQ-aligned square, as the 256² evaluation faces)
MEAN_FACE_SIZE = 256
#: only faces whose mouths are at most this open are averaged (:func:`mouth_opening`: ~0 closed)
MAX_MOUTH_OPEN = 0.03
#: the split between the model's band and the mean face's, in px of a 256² face (scaled with the side)
STRUCTURE_SIGMA = 8.0
#: the mean face's detail is taken at this many times its contrast (1.25 was tried: KID and detail
#: better, but by eye no face clearly better and one worse; README, "The mean face's detail at 1.25
#: times its contrast")
STRUCTURE_GAIN = 1.0
#: ``unmask``'s gain of the mean face's chroma detail (CIELAB a*, b* above the split: the lips' redness,
#: crisp), times the photo's own saturation over the mean face's, at most MAX_CHROMA_RATIO
#: (:func:`structure_from_mean_face`'s ``chroma``)
MEAN_CHROMA = 1.0
MAX_CHROMA_RATIO = 1.5
#: the face's outline (:func:`unmasked.faces.landmarks.face_outline`: its hull, grown by this x the side)
#: within which the mean face's detail is used; its edge is blurred by :data:`OUTLINE_SOFTNESS`
OUTLINE_GROW = 0.05
#: px of a 256² face
OUTLINE_SOFTNESS = 4.0
#: :func:`horizontal_band_ratio` at or above which ``unmask --mean-face auto`` uses the mean face
BAND_THRESHOLD = 1.3
#: :func:`texture_enhance`: the Laplacian-pyramid split (Gaussian sigmas, px of a 256² face); the
#: bands lie between consecutive sigmas (the first is the image itself), all above STRUCTURE_SIGMA's split
TEXTURE_SIGMAS = (0.0, 1.0, 2.0, 4.0, 8.0)
#: only the finest this many bands are enhanced (below 2 px at 256²): enhancing the 2-8 px bands too
#: cost 0.009 of identity distance and 0.38 dB (README, "The mean face's texture restored")
TEXTURE_BANDS = 2
#: a band's contrast is raised at most this many times (12 was as good by eye; beyond the face, where
#: the faces' hair and backgrounds average to almost nothing, no cap turns noise into texture)
TEXTURE_CAP = 6.0
#: the texture is restored only inside the face's outline (its landmarks' hull) shrunk by this many
#: px of a 256² face (14 px left a line along the jaw on 3 of 20 real photos), with a soft edge of
#: TEXTURE_SOFTNESS px
TEXTURE_INSET = 22.0
TEXTURE_SOFTNESS = 6.0
#: the shipped mean faces, beside FaceMesh's model files (not fill models, so not among the presets):
#: the plain average (what the landmark model's ``mean_face`` guide was trained with) and its
#: texture-enhanced version (:func:`texture_enhance`), which ``unmask`` uses
MEAN_FACE_FILE = Path(__file__).parent / "models" / "mean_face256.safetensors"
TEXTURED_MEAN_FACE_FILE = Path(__file__).parent / "models" / "mean_face256_texture.safetensors"
MEAN_FACE_FORMAT = "unmasked.mean_face/1"


@dataclass(frozen=True)
class MeanFace:
    """``image`` uint8 (S, S, 3): the average of shape-normalised faces; ``points`` float64 (68, 2):
    its landmarks (the faces' mean landmarks, in its pixels); ``count``: how many faces it averages."""

    image: np.ndarray
    points: np.ndarray
    count: int


def _border(side: int) -> np.ndarray:
    """Eight points on the square's border: corners and edge middles (so the warp covers the image)."""
    e, m = side - 1.0, (side - 1) / 2.0
    return np.array([[0, 0], [m, 0], [e, 0], [e, m], [e, e], [m, e], [0, e], [0, m]], np.float64)


def _check_points(points: np.ndarray, what: str = "landmarks") -> np.ndarray:
    pts = np.asarray(points, np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise ValueError(f"{what} must be finite (68, 2), got {pts.shape}")
    return pts


def warp_by_landmarks(image: np.ndarray, points: np.ndarray, to_points: np.ndarray, side: int) -> np.ndarray:
    """``image`` (H, W, C), whose 68 landmarks are ``points`` (its pixels), warped piecewise-affinely
    to a ``side`` x ``side`` image in which they lie at ``to_points``. The image's border maps to
    the output's border. Returns float32 (side, side, C).

    The map is computed at 256 px at most and scaled up (it is affine on each triangle, so that
    loses almost nothing) to keep a large face fast.
    """
    points, to_points = _check_points(points), _check_points(to_points, "to_points")
    h, w = image.shape[:2]
    if h != w:
        raise ValueError(f"warp_by_landmarks needs a square image, got {h}x{w}")
    work = min(side, 256)
    k = (work - 1) / (side - 1)
    src = np.concatenate([points, _border(h)])
    dst = np.concatenate([to_points * k, _border(work)])
    interp = LinearNDInterpolator(dst, src)  # output pixel -> input pixel, affine per triangle
    yy, xx = np.mgrid[0:work, 0:work]
    grid = interp(np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64))
    grid = np.nan_to_num(grid, nan=0.0).reshape(work, work, 2).astype(np.float32)
    if work != side:
        grid = cv2.resize(grid, (side, side), interpolation=cv2.INTER_LINEAR)
    out = cv2.remap(np.asarray(image, np.float32), grid[..., 0], grid[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT)
    return out.reshape(side, side, -1)


def _texture_bands(image: np.ndarray, side: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``image`` float (S, S) split at :data:`TEXTURE_SIGMAS` (scaled to ``side``): (the bands,
    finest first, and the low-pass rest); their sum is the image."""
    k = side / 256.0
    levels = [image] + [cv2.GaussianBlur(image, (0, 0), s * k) for s in TEXTURE_SIGMAS[1:]]
    return [levels[i] - levels[i + 1] for i in range(len(levels) - 1)], levels[-1]


def _band_amplitudes(grey: np.ndarray, side: int) -> np.ndarray:
    """float64 (bands, S, S): each band's local amplitude, its absolute value smoothed by a Gaussian
    twice the band's outer sigma (at least 2 px of a 256² face)."""
    k = side / 256.0
    bands, _ = _texture_bands(np.asarray(grey, np.float64), side)
    return np.stack([cv2.GaussianBlur(np.abs(b), (0, 0), max(2.0, 2.0 * s) * k)
                     for b, s in zip(bands, TEXTURE_SIGMAS[1:], strict=True)])


def texture_enhance(mean: np.ndarray, points: np.ndarray, amplitudes: np.ndarray, *, cap: float = TEXTURE_CAP,
                    inset: float = TEXTURE_INSET, bands: int = TEXTURE_BANDS) -> np.ndarray:
    """The texture-enhanced prototype (module docstring; Tiddeman, Burt & Perrett 2001) of a mean
    face ``mean`` (float (S, S, 3), the average of warped faces, whose landmarks are ``points``):
    each of the finest ``bands`` Laplacian bands of each channel times the faces' mean local
    amplitude ``amplitudes`` (float (4, S, S), of the faces' luminance, :func:`_band_amplitudes`
    averaged) over the mean's own luminance amplitude, between 1 and ``cap``, inside the face's
    outline shrunk by ``inset`` px of a 256² face (soft edge :data:`TEXTURE_SOFTNESS`); the
    coarser bands are the mean's. Returns uint8 (S, S, 3)."""
    mean = np.asarray(mean, np.float64)
    side = mean.shape[0]
    amplitudes = np.asarray(amplitudes, np.float64)
    if mean.shape != (side, side, 3) or amplitudes.shape != (len(TEXTURE_SIGMAS) - 1, side, side):
        raise ValueError(f"mean must be (S, S, 3) and amplitudes ({len(TEXTURE_SIGMAS) - 1}, S, S), "
                         f"got {mean.shape} and {amplitudes.shape}")
    k = side / 256.0
    inner = cv2.erode(face_outline(_check_points(points), side, 0.0).astype(np.uint8), disc(inset * k))
    where = cv2.GaussianBlur(inner.astype(np.float64), (0, 0), TEXTURE_SOFTNESS * k)
    own = _band_amplitudes(mean.mean(axis=2), side)
    gains = 1.0 + where * (np.clip(amplitudes / (own + 1e-3), 1.0, cap) - 1.0)
    gains[bands:] = 1.0
    out = np.empty_like(mean)
    for c in range(3):
        parts, low = _texture_bands(mean[..., c], side)
        out[..., c] = low + sum(g * b for g, b in zip(gains, parts, strict=True))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def build_mean_face(images: np.ndarray, landmarks: np.ndarray, *, max_mouth_open: float = MAX_MOUTH_OPEN,
                    texture: bool = False) -> MeanFace:
    """The shape-normalised mean (module docstring) of the faces ``images`` (uint8 (N, S, S, 3),
    aligned) with landmarks ``landmarks`` (float (N, 68, 2), their pixels), over those whose mouth
    is at most ``max_mouth_open`` open (:func:`mouth_opening`); with ``texture``, its
    texture-enhanced version (:func:`texture_enhance`)."""
    images = np.asarray(images)
    lm = np.asarray(landmarks, np.float64)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"images must be (N, S, S, 3), got {images.shape}")
    if lm.shape != (len(images), 68, 2):
        raise ValueError(f"landmarks must be ({len(images)}, 68, 2), got {lm.shape}")
    use = np.isfinite(lm).all(axis=(1, 2))
    use[use] &= mouth_opening(lm[use]) <= max_mouth_open
    if not use.any():
        raise ValueError(f"no face has a mouth at most {max_mouth_open} open")
    side = images.shape[1]
    mean_points = lm[use].mean(axis=0)
    total = np.zeros((side, side, 3), np.float64)
    amplitudes = np.zeros((len(TEXTURE_SIGMAS) - 1, side, side), np.float64) if texture else None
    for i in np.flatnonzero(use):
        warped = warp_by_landmarks(images[i], lm[i], mean_points, side)
        total += warped
        if texture:
            amplitudes += _band_amplitudes(warped.mean(axis=2), side)
    count = int(use.sum())
    if texture:
        return MeanFace(texture_enhance(total / count, mean_points, amplitudes / count), mean_points, count)
    image = np.clip(np.round(total / count), 0, 255).astype(np.uint8)
    return MeanFace(image, mean_points, count)


def save_mean_face(mean: MeanFace, path: str | os.PathLike, *, source: str = "") -> None:
    """Write ``mean`` as a safetensors file (its image uint8, its points float32, and how it was made)."""
    meta = {"format": MEAN_FACE_FORMAT, "count": str(mean.count), "source": source,
            "max_mouth_open": json.dumps(MAX_MOUTH_OPEN)}
    save_file({"image": np.ascontiguousarray(mean.image, np.uint8),
               "points": np.ascontiguousarray(mean.points, np.float32)}, os.fspath(path), metadata=meta)


def load_mean_face(path: str | os.PathLike = MEAN_FACE_FILE) -> MeanFace:
    """A mean face written by :func:`save_mean_face` (by default the shipped one); a file of any
    other kind is refused with a one-line ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no mean face at {path}")
    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != MEAN_FACE_FORMAT:
                raise ValueError(f"{path} is not a mean face (format {meta.get('format')!r})")
            image, points = f.get_tensor("image"), f.get_tensor("points")
    except ValueError:
        raise
    except Exception as e:  # a damaged or foreign file
        raise ValueError(f"{path} is not a readable mean face: {e}") from None
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3 or points.shape != (68, 2):
        raise ValueError(f"{path} holds an image {image.shape} and points {points.shape}, not (S, S, 3) and (68, 2)")
    return MeanFace(image.astype(np.uint8), points.astype(np.float64), int(meta.get("count", 0)))


@functools.lru_cache(maxsize=2)
def shipped_mean_face(texture: bool = False) -> MeanFace:
    """The shipped mean face (:data:`MEAN_FACE_FILE`; with ``texture`` its texture-enhanced version,
    :data:`TEXTURED_MEAN_FACE_FILE`), read once per process."""
    return load_mean_face(TEXTURED_MEAN_FACE_FILE if texture else MEAN_FACE_FILE)


def structure_from_mean_face(fill: np.ndarray, points: np.ndarray, mean: MeanFace, *,
                             sigma: float = STRUCTURE_SIGMA, where: np.ndarray | None = None,
                             gain: float | None = None, chroma: float = 0.0) -> np.ndarray:
    """``fill`` (uint8 (S, S, 3), an aligned face filled at S px) with its structure above the
    split (a Gaussian of ``sigma`` px at 256², scaled to S) taken, inside the face's outline, from
    ``mean`` warped so its landmarks lie at ``points`` (68, 2, the fill's pixels: FaceMesh's guess
    under the mask). Below the split, and outside the outline, the fill is unchanged. The mean
    face's luminance detail is used (the same in R, G and B; its colour detail only with
    ``chroma``), taken at ``gain`` times its contrast (None: :data:`STRUCTURE_GAIN`, read at call time).
    ``where`` (float or bool (S, S), 1 = the hole) confines the change to the hole, where the fill
    is the model's (outside it the fill is the photo, whose own detail is real).

    ``chroma`` (0: none, luminance only; ``unmask`` gives :data:`MEAN_CHROMA`): the mean face's colour
    detail above the split too (CIELAB a* and b*: where the lips are redder than the skin around
    them, with the mean's crisp edge), times ``chroma`` and the photo's saturation over the mean
    face's (the median chroma of the face's skin outside ``where``, at most
    :data:`MAX_CHROMA_RATIO`), so a black-and-white photo gets none. Returns uint8 (S, S, 3).
    """
    fill = np.asarray(fill)
    side = fill.shape[0]
    if fill.ndim != 3 or fill.shape[1] != side or fill.shape[2] != 3:
        raise ValueError(f"fill must be (S, S, 3), got {fill.shape}")
    points = _check_points(points)
    s = sigma * side / 256.0
    template = warp_by_landmarks(mean.image, mean.points, points, side)
    detail = template - cv2.GaussianBlur(template, (0, 0), s)
    detail = np.repeat(detail.mean(axis=2, keepdims=True), 3, axis=2) * (STRUCTURE_GAIN if gain is None else gain)
    f = fill.astype(np.float32)
    low = cv2.GaussianBlur(f, (0, 0), s)
    inside = face_outline(points, side, OUTLINE_GROW).astype(np.float32)
    weight = cv2.GaussianBlur(inside, (0, 0), OUTLINE_SOFTNESS * side / 256.0)[..., None]
    out = low + weight * detail + (1.0 - weight) * (f - low)
    if where is not None:
        where = np.asarray(where, np.float32)
        if where.shape != (side, side):
            raise ValueError(f"where is {where.shape}, the fill {fill.shape[:2]}")
        out = f + where[..., None] * (out - f)
    if chroma > 0:
        t_lab = cielab(np.clip(template, 0, 255))
        colour = t_lab[..., 1:] - cv2.GaussianBlur(t_lab[..., 1:], (0, 0), s)
        face = face_outline(points, side, 0.0)
        skin = face & (where < 0.01) if where is not None else face
        saturation = (float(np.median(np.hypot(*cielab(fill)[..., 1:].transpose(2, 0, 1))[skin])) if skin.any() else 0.0)
        ratio = min(MAX_CHROMA_RATIO, saturation / max(float(np.median(np.hypot(t_lab[..., 1], t_lab[..., 2])[face])), 1e-3))
        k = chroma * ratio * weight[..., 0] * (where if where is not None else 1.0)
        o_lab = cielab(np.clip(out, 0, 255))
        o_lab[..., 1:] += k[..., None] * colour
        out = cv2.cvtColor(o_lab, cv2.COLOR_LAB2RGB) * 255.0
    return np.clip(np.round(out), 0, 255).astype(np.uint8)



def horizontal_band_ratio(fill: np.ndarray, hole: np.ndarray, points: np.ndarray) -> float:
    """How much the fill's structure in the hole runs in horizontal bands: the mean squared
    vertical gradient of the luminance smoothed along rows, over the mean squared horizontal
    gradient of it smoothed along columns (an orientation-energy ratio, as in a structure tensor,
    with anisotropic smoothing that keeps only long edges: sigma 3 px along the edge, 0.6 px
    across, at 128²). It is taken inside the hole and the face's outline (eroded 2 px), leaving out
    the lips (their polygon grown 3 px) and the nostrils, whose edges are horizontal in every face.
    The hole's own edge counts where the fill does not continue the photo (a flat grey fill in a
    black-and-white photo scores 1.1-1.5). On the default model's fills of 40 real photos, faces
    looked at as unbanded scored 0.2-1.9 (median 0.6), banded ones 0.4-28 (median 1.7). ``fill``
    uint8 (S, S, 3), ``hole`` bool (S, S), ``points`` the 68 landmarks (FaceMesh's guess under the
    mask) in the fill's pixels. NaN when too little of the face is in the hole (under 30 px at 128²).
    """
    fill = np.asarray(fill)
    side = fill.shape[0]
    if fill.ndim != 3 or fill.shape[1:] != (side, 3) or np.shape(hole) != (side, side):
        raise ValueError(f"fill must be (S, S, 3) and hole (S, S), got {fill.shape} and {np.shape(hole)}")
    points = _check_points(points)
    k = side / 128.0
    lum = cv2.cvtColor(fill, cv2.COLOR_RGB2GRAY).astype(np.float32)
    along_rows = cv2.GaussianBlur(lum, (0, 0), sigmaX=3.0 * k, sigmaY=0.6 * k)
    along_cols = cv2.GaussianBlur(lum, (0, 0), sigmaX=0.6 * k, sigmaY=3.0 * k)
    gy = cv2.Sobel(along_rows, cv2.CV_32F, 0, 1, ksize=3)
    gx = cv2.Sobel(along_cols, cv2.CV_32F, 1, 0, ksize=3)

    region = (np.asarray(hole, bool) & face_outline(points, side, 0.0)).astype(np.uint8)
    region = cv2.erode(region, disc(2 * k))
    parts = np.zeros((side, side), np.uint8)
    cv2.fillPoly(parts, [np.round(points[48:60]).astype(np.int32)], 1)
    cv2.fillConvexPoly(parts, cv2.convexHull(np.round(points[30:36]).astype(np.int32)), 1)
    keep = region.astype(bool) & ~cv2.dilate(parts, disc(3 * k)).astype(bool)
    if keep.sum() < 30 * k * k:
        return float("nan")
    return float((gy[keep] ** 2).mean() / ((gx[keep] ** 2).mean() + 1e-3 * 64))
