"""Synthetic worn face masks on real faces: the MaskTheFace method.

Anwar & Raychowdhury, "Masked Face Recognition for Secure Authentication", arXiv:2008.11104,
2020 (the MaskTheFace tool, MIT licence; this is an independent implementation). A mask
template is an RGBA picture annotated with six key points; the same six points are found on
the face from its 68 landmarks, a homography maps one set onto the other, and the warped
template is composited onto the photo. Here the composite is a hard one, so the hole mask is
exact: ``hole = warped alpha > 0.5`` and the output differs from the input only there.

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

Brightness follows MaskTheFace: the template's HSV value channel is multiplied by
``1 + (face V - template V) / 255`` (means over the face region and the template's opaque
pixels), so a white mask dims in a dark photo.

Colour and pattern follow MaskTheFace's ``--color`` / ``--pattern`` options
(:func:`restyle_template`): the template's RGB is blended ``(1 - w) * template + w * overlay``
with a flat colour or a texture picture resized to the template (MaskTheFace's
``textures/`` folder), except that here the overlay is first multiplied by the template's own
relative shading, so pleats and folds survive a dark colour. Real masks are often black, grey
or navy, knitted or printed, none of which the plain templates show:
:func:`random_restyle` draws such variants for training the worn-mask segmenter.

Templates come either from a MaskTheFace folder (:meth:`TemplateSet.from_folder`: ``masks.cfg``
plus RGBA PNGs; research data, never copied into this repository) or are drawn procedurally
with OpenCV from the explicit ``rng`` (:data:`PROCEDURAL_KINDS`: surgical, n95, kn95, cloth),
annotated with the same six points so both go through the same homography. Procedural masks
are drawn frontal only; the homography foreshortens them on turned faces.

Measured on FFHQ-aligned 128 x 128 CelebA faces: the hole covers 6-33 % of the crop (means by
type 0.11-0.16, MaskTheFace's gas mask 0.22); placed on landmarks detected on MaskedFace-Net
photos, a surgical mask overlaps their labelled mask with IoU ~0.7-0.76.
"""

from __future__ import annotations

import configparser
import functools
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

PROCEDURAL_KINDS = ("surgical", "n95", "kn95", "cloth")
#: named fabric colours (RGB): MaskTheFace's ``--color`` choices and the dark and neutral
#: colours real masks often have
FABRIC_COLOURS = {
    "black": (22, 22, 24), "charcoal": (52, 53, 57), "dimgray": (105, 105, 105), "grey": (150, 150, 152),
    "navy": (28, 38, 78), "cyan_blue": (4, 115, 226), "pink": (255, 192, 203), "olive": (128, 128, 0),
    "white": (244, 244, 242), "beige": (214, 196, 170),
}
#: picture files read as textures from a template folder's ``textures/`` tree
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
TILTS = ("front", "left", "right")
#: nose-tip position between the cheeks (0..1) beyond 0.5 +- this picks a turned template
TILT_THRESHOLD = 0.15

# Mean 68-point landmarks of FFHQ-aligned faces, as fractions of the crop side (x, y), measured
# with dlib on 400 faces of celeba_wild256; used when an aligned crop has no detected landmarks.
FFHQ_MEAN_LANDMARKS = np.array([
    (0.219, 0.472), (0.221, 0.546), (0.229, 0.620), (0.244, 0.693), (0.272, 0.761), (0.315, 0.820), (0.369, 0.872), (0.429, 0.913),
    (0.497, 0.925), (0.564, 0.912), (0.624, 0.870), (0.678, 0.819), (0.722, 0.760), (0.749, 0.692), (0.763, 0.618), (0.772, 0.545),
    (0.774, 0.471), (0.271, 0.416), (0.307, 0.388), (0.355, 0.382), (0.403, 0.391), (0.449, 0.411), (0.542, 0.409), (0.589, 0.389),
    (0.637, 0.380), (0.685, 0.387), (0.721, 0.414), (0.496, 0.465), (0.496, 0.513), (0.496, 0.562), (0.496, 0.610), (0.442, 0.641),
    (0.468, 0.652), (0.496, 0.660), (0.524, 0.651), (0.549, 0.641), (0.327, 0.470), (0.357, 0.452), (0.394, 0.453), (0.425, 0.478),
    (0.391, 0.484), (0.355, 0.484), (0.567, 0.477), (0.598, 0.452), (0.635, 0.451), (0.665, 0.469), (0.638, 0.483), (0.602, 0.483),
    (0.385, 0.727), (0.426, 0.710), (0.467, 0.702), (0.496, 0.709), (0.526, 0.702), (0.566, 0.710), (0.606, 0.727), (0.568, 0.771),
    (0.528, 0.791), (0.496, 0.794), (0.464, 0.791), (0.424, 0.772), (0.402, 0.730), (0.467, 0.727), (0.496, 0.730), (0.526, 0.727),
    (0.589, 0.730), (0.526, 0.752), (0.496, 0.756), (0.466, 0.752),
], dtype=np.float64)


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


# --------------------------------------------------------------------------- templates


@dataclass
class Template:
    """An RGBA mask picture ``rgba`` uint8 (h, w, 4) and its six key points ``points`` (6, 2), a..f."""

    name: str
    rgba: np.ndarray
    points: np.ndarray


@dataclass
class TemplateSet:
    """MaskTheFace templates: ``masks.cfg`` (INI; per section ``template`` and ``mask_a`` .. ``mask_f``)
    plus RGBA PNGs. Pictures are read on first use. Names are matched case-insensitively."""

    root: Path
    entries: dict[str, tuple[Path, np.ndarray]]
    _cache: dict[str, Template] = field(default_factory=dict, repr=False)

    @classmethod
    def from_folder(cls, path: str | os.PathLike) -> TemplateSet:
        """Read ``path/masks.cfg``; sections without a ``template`` (MaskTheFace's "empty" and
        "inpaint" pseudo-masks) are skipped. Template paths are tried relative to ``path``, to
        its parent (MaskTheFace writes ``masks/templates/x.png``) and as ``path/templates/<name>``."""
        root = Path(path)
        cfg_path = root / "masks.cfg"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"no masks.cfg in template folder {root}")
        parser = configparser.ConfigParser(strict=False)
        parser.read(cfg_path)
        entries: dict[str, tuple[Path, np.ndarray]] = {}
        for section in parser.sections():
            sec = parser[section]
            if "template" not in sec:
                continue
            rel = Path(sec["template"].strip())
            candidates = [root / rel, root.parent / rel, root / "templates" / rel.name]
            image = next((p for p in candidates if p.is_file()), None)
            if image is None:
                raise FileNotFoundError(f"template image {rel} of [{section}] not found under {root}")
            try:
                points = np.array([[float(x) for x in sec[f"mask_{k}"].split(",")] for k in "abcdef"])
            except (KeyError, ValueError) as e:
                raise ValueError(f"[{section}] in {cfg_path} needs mask_a .. mask_f as 'x, y': {e}") from None
            entries[section.lower()] = (image, points)
        if not entries:
            raise ValueError(f"{cfg_path} defines no templates")
        return cls(root, entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def names(self) -> list[str]:
        return sorted(self.entries)

    @property
    def kinds(self) -> list[str]:
        """Base names that have a front template (e.g. surgical, surgical_blue, n95, kn95, cloth, gas)."""
        return sorted(n for n in self.entries if not n.endswith(("_left", "_right")))

    def template(self, name: str) -> Template:
        name = name.lower()
        if name not in self.entries:
            raise ValueError(f"unknown template {name!r}; available: {', '.join(self.names)}")
        if name not in self._cache:
            path, points = self.entries[name]
            bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
                raise ValueError(f"template {path} must be an RGBA PNG")
            if bgra.dtype == np.uint16:
                bgra = (bgra // 257).astype(np.uint8)
            self._cache[name] = Template(name, cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA), points)
        return self._cache[name]

    @functools.cached_property
    def textures(self) -> list[Path]:
        """Texture pictures below ``root/textures`` (MaskTheFace's check / floral / fruits / others), sorted;
        listed once per template set (every synthetic mask asks)."""
        folder = self.root / "textures"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXTURE_SUFFIXES and p.is_file())

    def get(self, kind: str, tilt: str = "front") -> Template:
        """The template for ``kind`` turned by ``tilt``, falling back to the front one."""
        kind = kind.lower()
        if tilt != "front" and f"{kind}_{tilt}" in self.entries:
            return self.template(f"{kind}_{tilt}")
        return self.template(kind)


# --------------------------------------------------------------------------- colours and patterns


def parse_colour(colour) -> np.ndarray:
    """RGB float (3,) from a :data:`FABRIC_COLOURS` name, ``#rrggbb`` or an (r, g, b) triple."""
    if isinstance(colour, str):
        text = colour.strip().lower()
        if text in FABRIC_COLOURS:
            return np.asarray(FABRIC_COLOURS[text], np.float64)
        if len(text) == 7 and text.startswith("#"):
            try:
                return np.array([int(text[i:i + 2], 16) for i in (1, 3, 5)], np.float64)
            except ValueError:
                pass
        raise ValueError(f"unknown colour {colour!r}: use #rrggbb or one of {', '.join(FABRIC_COLOURS)}")
    rgb = np.asarray(colour, np.float64).reshape(-1)
    if rgb.shape != (3,) or not np.all((rgb >= 0) & (rgb <= 255)):
        raise ValueError(f"a colour needs three values in 0..255, got {colour!r}")
    return rgb


_TEXTURE_CACHE: dict[str, np.ndarray] = {}


def load_texture(path: str | os.PathLike) -> np.ndarray:
    """A texture picture as uint8 RGB (cached by path)."""
    key = str(path)
    if key not in _TEXTURE_CACHE:
        bgr = cv2.imread(key, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read texture image {key}")
        _TEXTURE_CACHE[key] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return _TEXTURE_CACHE[key]


def restyle_template(template: Template, *, colour=None, texture=None, weight: float = 0.5) -> Template:
    """The template recoloured (``colour``: see :func:`parse_colour`) or patterned (``texture``: uint8
    RGB picture or a path, resized to the template canvas as MaskTheFace does).

    ``out = (1 - weight) * template + weight * overlay * shading``, where ``shading`` is the
    template's luminance over its mean on the opaque pixels (clipped to 0.4..1.4), so folds, pleats
    and seams stay visible. ``weight`` 0 returns the template unchanged, 1 the overlay with the
    template's shading; MaskTheFace blends at 0.5 without the shading. Alpha and key points are kept.
    """
    if (colour is None) == (texture is None):
        raise ValueError("give exactly one of colour or texture")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    rgb = template.rgba[..., :3].astype(np.float64)
    alpha = template.rgba[..., 3]
    h, w = rgb.shape[:2]
    if texture is not None:
        picture = load_texture(texture) if isinstance(texture, (str, os.PathLike)) else np.asarray(texture)
        if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"a texture must be a uint8 RGB picture, got {picture.dtype} {picture.shape}")
        overlay = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)
    else:
        overlay = np.broadcast_to(parse_colour(colour), (h, w, 3))
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    opaque = alpha > 127
    mean = float(lum[opaque].mean()) if opaque.any() else float(lum.mean())
    shading = np.clip(lum / max(mean, 1.0), 0.4, 1.4)[..., None]
    out = (1.0 - weight) * rgb + weight * overlay * shading
    rgba = np.dstack([np.clip(np.round(out), 0, 255).astype(np.uint8), alpha])
    return Template(template.name, rgba, template.points)


def add_decal(template: Template, rng: np.random.Generator) -> Template:
    """The template with one printed mark on its fabric, as brand logos and lettering are: a ring,
    a disc, a badge or one to three letters, 6-16 % of the mask's width, in a colour far from the
    fabric's, somewhere on the opaque part between the key points. Alpha and points are kept."""
    rgba = template.rgba.copy()
    alpha = rgba[..., 3] > 127
    pts = np.asarray(template.points, np.float64)
    width = float(np.hypot(*(pts[2] - pts[0])))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    for _ in range(10):  # a centre on the fabric
        cx, cy = rng.uniform(lo[0] + 0.15 * (hi[0] - lo[0]), hi[0] - 0.15 * (hi[0] - lo[0])), rng.uniform(
            lo[1] + 0.3 * (hi[1] - lo[1]), hi[1] - 0.15 * (hi[1] - lo[1]))
        x, y = int(round(cx)), int(round(cy))
        if 0 <= y < alpha.shape[0] and 0 <= x < alpha.shape[1] and alpha[y, x]:
            break
    else:
        return template
    fabric = rgba[..., :3][alpha].mean(axis=0)
    colour = np.where(fabric > 128, rng.uniform(0, 70, 3), rng.uniform(170, 255, 3))
    if rng.random() < 0.3:  # gold, red or blue print
        colour = np.asarray([(200, 160, 60), (200, 30, 40), (30, 60, 190)][int(rng.integers(0, 3))], np.float64)
    layer = np.zeros(alpha.shape, np.uint8)
    r = max(2, int(round(rng.uniform(0.03, 0.08) * width)))
    kind = int(rng.integers(0, 4))
    if kind == 0:
        cv2.circle(layer, (x, y), r, 255, max(1, r // 5), cv2.LINE_AA)
    elif kind == 1:
        cv2.circle(layer, (x, y), r, 255, -1, cv2.LINE_AA)
    elif kind == 2:
        cv2.rectangle(layer, (x - r, y - r // 2), (x + r, y + r // 2), 255, -1, cv2.LINE_AA)
    else:
        text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(1, 4))))
        scale = r / 12.0
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, r // 6))
        cv2.putText(layer, text, (x - tw // 2, y + th // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, r // 6),
                    cv2.LINE_AA)
    a = (layer.astype(np.float64) / 255.0 * alpha)[..., None]
    rgba[..., :3] = np.clip(np.round(rgba[..., :3] * (1 - a) + colour * a), 0, 255).astype(np.uint8)
    return Template(template.name, rgba, template.points)


def random_restyle(template: Template, rng: np.random.Generator, textures: Sequence = ()) -> Template:
    """A training variant of ``template``: kept plain (40 %), a fabric colour (35 %: a
    :data:`FABRIC_COLOURS` entry, dark ones twice as likely, or a random hue) or a texture picture
    from ``textures`` (25 %; a colour when there are none), at weight 0.75-1; then, a third of the
    time, a printed mark (:func:`add_decal`)."""
    u = rng.random()
    if u >= 0.4:
        weight = float(rng.uniform(0.75, 1.0))
        if u >= 0.75 and len(textures):
            template = restyle_template(template, texture=textures[int(rng.integers(0, len(textures)))], weight=weight)
        else:
            names = list(FABRIC_COLOURS) + ["black", "charcoal", "navy", "dimgray"]
            colour = _random_colour(rng) if rng.random() < 0.2 else names[int(rng.integers(0, len(names)))]
            template = restyle_template(template, colour=colour, weight=weight)
    if rng.random() < 1 / 3:
        template = add_decal(template, rng)
    return template


# --------------------------------------------------------------------------- procedural templates

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


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(40, 230), rng.integers(40, 240)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


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
        first = _random_colour(rng)
        rgb[:] = first
        if pattern == "stripes":
            second = _random_colour(rng)
            period = rng.uniform(30, 70) * s
            angle = rng.choice([0.0, np.pi / 4, -np.pi / 4, np.pi / 2])
            yy, xx = np.mgrid[0:h, 0:w]
            phase = (xx * math.sin(angle) + yy * math.cos(angle)) / period
            rgb[(phase % 1.0) < rng.uniform(0.3, 0.6)] = second
        elif pattern == "dots":
            second = _random_colour(rng)
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


# --------------------------------------------------------------------------- putting a mask on a face


def _landmarks_of(face) -> np.ndarray:
    """(68, 2) landmarks from a :class:`unmasked.faces.Face` or an array."""
    lm = np.asarray(getattr(face, "landmarks", face), dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected a Face or 68 landmarks of shape (68, 2), got {lm.shape}")
    return lm


def _face_brightness(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean HSV value (0..255) inside the convex hull of the landmarks."""
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(landmarks.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(landmarks.max(axis=0)).astype(int) + 1, 1, [w, h])
    roi = rgb[y0:y1, x0:x1]
    if roi.size == 0:
        return float(rgb.max(axis=2).mean())
    region = np.zeros(roi.shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(landmarks - [x0, y0]).astype(np.int32))
    cv2.fillConvexPoly(region, hull, 1)
    value = roi.max(axis=2)  # HSV V = max(R, G, B)
    return float(value[region > 0].mean()) if region.any() else float(value.mean())


def apply_template(
    rgb: np.ndarray, landmarks: np.ndarray, template: Template, *, match_brightness: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``template`` onto the face with the homography of its six points onto :func:`six_points`.

    Returns ``(masked_rgb uint8 (H, W, 3), hole bool (H, W))``; hole = warped alpha > 0.5, and
    the composite is hard, so ``masked_rgb`` equals ``rgb`` exactly outside ``hole``.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    landmarks = _landmarks_of(landmarks)
    h, w = rgb.shape[:2]
    out, hole = rgb.copy(), np.zeros((h, w), bool)
    dst = six_points(landmarks)
    src = np.asarray(template.points, np.float64)
    tpl = template.rgba
    # a template much larger than its place on the face is shrunk first, so the warp does not alias
    shrink = min(1.0, 2.0 * np.hypot(*(dst[2] - dst[0])) / max(np.hypot(*(src[2] - src[0])), 1e-9))
    if shrink < 0.5:
        th, tw = tpl.shape[:2]
        size = (max(2, round(tw * shrink)), max(2, round(th * shrink)))
        src = (src + 0.5) * [size[0] / tw, size[1] / th] - 0.5
        tpl = cv2.resize(tpl, size, interpolation=cv2.INTER_AREA)
    homography, _ = cv2.findHomography(src.astype(np.float32), dst.astype(np.float32), 0)
    if homography is None or not np.isfinite(homography).all():
        raise ValueError("cannot fit the mask template to these landmarks (degenerate key points)")

    th, tw = tpl.shape[:2]
    corners = np.array([[[0, 0], [tw, 0], [tw, th], [0, th]]], np.float64)
    warped_corners = cv2.perspectiveTransform(corners, homography)[0]
    if not np.isfinite(warped_corners).all():
        return out, hole
    x0, y0 = np.clip(np.floor(warped_corners.min(axis=0)).astype(int) - 1, 0, [w, h])
    x1, y1 = np.clip(np.ceil(warped_corners.max(axis=0)).astype(int) + 2, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return out, hole
    shifted = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ homography
    # premultiplied alpha, so colours of transparent template pixels never bleed into the edge
    a = tpl[..., 3:4].astype(np.float32) / 255.0
    premultiplied = np.dstack([tpl[..., :3].astype(np.float32) * a, a])
    warped = cv2.warpPerspective(premultiplied, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3]
    region = alpha > 0.5
    if not region.any():
        return out, hole
    colour = np.clip(warped[..., :3] / np.maximum(alpha, 1e-6)[..., None], 0, 255).astype(np.uint8)
    if match_brightness:
        hsv = cv2.cvtColor(colour, cv2.COLOR_RGB2HSV).astype(np.float32)
        gain = 1.0 + (_face_brightness(rgb, landmarks) - float(hsv[..., 2][region].mean())) / 255.0
        hsv[..., 2] = np.clip(hsv[..., 2] * gain, 0, 255)
        colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    roi = out[y0:y1, x0:x1]
    roi[region] = colour[region]
    hole[y0:y1, x0:x1] = region
    return out, hole


def _pick_template(kind: str, landmarks: np.ndarray, rng: np.random.Generator, templates: TemplateSet | None) -> Template:
    kind = kind.lower()
    if templates is None:
        if kind == "random":
            kind = str(rng.choice(PROCEDURAL_KINDS))
        if kind not in PROCEDURAL_KINDS:
            raise ValueError(f"unknown mask type {kind!r}; choose from {', '.join(PROCEDURAL_KINDS)}, random "
                             "(or give a template folder)")
        pts = six_points(landmarks)
        width = np.hypot(*(pts[2] - pts[0]))
        return procedural_template(kind, rng, scale=float(np.clip(1.5 * width / 560.0, 0.08, 2.0)))
    if kind == "random":
        kind = str(rng.choice(templates.kinds))
    if kind not in templates.kinds:
        raise ValueError(f"no template {kind!r} in {templates.root}; available: {', '.join(templates.kinds)}, random")
    return templates.get(kind, head_tilt(landmarks)[0])


def put_face_mask(
    rgb: np.ndarray,
    face,
    rng: np.random.Generator,
    *,
    kind: str = "surgical",
    templates: TemplateSet | None = None,
    match_brightness: bool = True,
    colour=None,
    texture=None,
    weight: float = 0.5,
    variety: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Put a synthetic worn mask on ``face`` (a :class:`unmasked.faces.Face` or (68, 2) landmarks).

    Without ``templates``: ``kind`` in surgical, n95, kn95, cloth or random, drawn procedurally.
    With a :class:`TemplateSet`: ``kind`` is one of its :attr:`TemplateSet.kinds` (e.g. surgical,
    surgical_blue, n95, kn95, cloth, gas) or random; the turned variant follows :func:`head_tilt`.
    ``colour`` or ``texture`` restyle the mask at ``weight`` (:func:`restyle_template`; a texture
    "random" picks one of the template folder's textures); ``variety=True`` draws a random
    restyle instead (:func:`random_restyle`, with the folder's textures when there are templates).
    Returns ``(masked_rgb uint8 (H, W, 3), hole bool (H, W))``; outside ``hole`` the image is unchanged.
    """
    landmarks = _landmarks_of(face)
    template = _pick_template(kind, landmarks, rng, templates)
    textures = templates.textures if templates is not None else []
    if isinstance(texture, str) and texture == "random":
        if not textures:
            raise ValueError("texture 'random' needs a template folder with a textures/ subfolder")
        texture = textures[int(rng.integers(0, len(textures)))]
    if colour is not None or texture is not None:
        template = restyle_template(template, colour=colour, texture=texture, weight=weight)
    elif variety:
        template = random_restyle(template, rng, textures)
    return apply_template(rgb, landmarks, template, match_brightness=match_brightness)


def put_face_masks(
    rgb: np.ndarray, faces: Sequence, rng: np.random.Generator, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`put_face_mask` on each face in turn; the hole is the union of their holes."""
    out, hole = np.asarray(rgb).copy(), np.zeros(np.asarray(rgb).shape[:2], bool)
    for face in faces:
        out, h = put_face_mask(out, face, rng, **kwargs)
        hole |= h
    return out, hole


# --------------------------------------------------------------------------- aligned crops (training)


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


def face_mask_for_aligned(
    size: int,
    rng: np.random.Generator,
    *,
    image: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    kind: str = "random",
    templates: TemplateSet | None = None,
    jitter: float = 1.0,
    variety: bool = False,
) -> tuple[np.ndarray | None, np.ndarray]:
    """A worn-mask hole for an FFHQ-aligned ``size`` x ``size`` crop, without running dlib.

    ``landmarks`` (68, 2) in crop pixels, e.g. from :func:`landmarks_cache`; without them the
    mean aligned face is used, jittered by :func:`jittered_mean_landmarks`. With ``image``
    (uint8 (size, size, 3)) returns ``(masked image, hole)``; without, ``(None, hole)``.
    ``variety``: random colours and textures (:func:`random_restyle`); the hole is the same either way.
    """
    if landmarks is None:
        landmarks = jittered_mean_landmarks(size, rng, jitter)
    canvas = image if image is not None else np.full((size, size, 3), 128, np.uint8)
    if canvas.shape[:2] != (size, size):
        raise ValueError(f"image must be ({size}, {size}, 3), got {canvas.shape}")
    masked, hole = put_face_mask(canvas, landmarks, rng, kind=kind, templates=templates,
                                 match_brightness=image is not None, variety=variety and image is not None)
    return (masked if image is not None else None), hole


def landmarks_cache(
    folder: str | os.PathLike, size: int, cache_path: str | os.PathLike, *, detector: str = "auto"
) -> dict[str, np.ndarray]:
    """68 landmarks of every image below ``folder``, in the pixels of the image resized to ``size`` x ``size``.

    Detects once and keeps the result in ``cache_path`` (an ``.npz`` with ``paths``, ``landmarks``
    (N, 68, 2), ``size`` and ``missing``); later calls read it and detect only new files. Keys are
    paths relative to ``folder`` (posix). Images without a detected face are left out (and
    remembered in ``missing`` so they are not retried); use the mean face for them.
    """
    from unmasked.conventions import load_image
    from unmasked.data.datasets import list_images
    from unmasked.faces import detect_faces

    folder, cache_path = Path(folder), Path(cache_path)
    result: dict[str, np.ndarray] = {}
    missing: set[str] = set()
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            if int(z["size"]) == size:
                result = {str(p): lm for p, lm in zip(z["paths"], z["landmarks"], strict=True)}
                missing = {str(p) for p in z["missing"]}
    todo = [p for p in list_images(folder) if p.relative_to(folder).as_posix() not in result
            and p.relative_to(folder).as_posix() not in missing]
    for path in todo:
        rgb = load_image(path).rgb
        if rgb.shape[:2] != (size, size):
            rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        faces = detect_faces(rgb, detector=detector, min_size=size // 8)
        key = path.relative_to(folder).as_posix()
        if faces:
            result[key] = faces[0].landmarks
        else:
            missing.add(key)
    if todo or not cache_path.is_file():
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(result)
        tmp = cache_path.with_name(f".{cache_path.stem}.tmp.npz")
        np.savez(tmp, paths=np.array(keys, dtype=str), size=np.array(size),
                 landmarks=np.array([result[k] for k in keys], dtype=np.float32).reshape(-1, 68, 2),
                 missing=np.array(sorted(missing), dtype=str))
        os.replace(tmp, cache_path)
    return result


# --------------------------------------------------------------------------- folders


@dataclass
class FaceMaskItem:
    """One photo of :func:`mask_folder`: ``status`` is "masked", "no_face" or "error"."""

    source: Path
    status: str
    faces: int = 0
    image_path: Path | None = None
    mask_path: Path | None = None
    message: str = ""


def mask_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    kind: str = "random",
    templates: TemplateSet | None = None,
    seed: int = 0,
    detector: str = "blazeface",
    colour=None,
    texture=None,
    weight: float = 0.5,
) -> Iterator[FaceMaskItem]:
    """Put masks on every face of every photo below ``input_dir`` (``colour`` / ``texture`` /
    ``weight`` restyle them as in :func:`put_face_mask`).

    For ``a/b.jpg`` writes ``output_dir/a/b.png`` (the masked photo, PNG so the pixels match the
    mask exactly) and ``output_dir/a/b_mask.png`` (white = hole). Each photo's masks come from
    ``default_rng([seed, crc32(relative path)])``: reproducible, and independent of the other files.
    """
    from unmasked.conventions import ImageReadError, load_image, save_image, save_mask
    from unmasked.data.datasets import list_images
    from unmasked.faces import detect_faces

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if kind != "random" and templates is None and kind not in PROCEDURAL_KINDS:
        raise ValueError(f"unknown mask type {kind!r}; choose from {', '.join(PROCEDURAL_KINDS)}, random")
    if colour is not None and texture is not None:
        raise ValueError("give a colour or a texture, not both")
    if colour is not None:
        parse_colour(colour)  # fail before any photo is read
    if texture is not None and texture != "random":
        load_texture(texture)
    if texture == "random" and (templates is None or not templates.textures):
        raise ValueError("texture 'random' needs a template folder with a textures/ subfolder (--templates)")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    for path in list_images(input_dir):
        rel = path.relative_to(input_dir)
        try:
            rgb = load_image(path).rgb
        except ImageReadError as e:
            yield FaceMaskItem(path, "error", message=str(e))
            continue
        faces = detect_faces(rgb, detector=detector)
        if not faces:
            yield FaceMaskItem(path, "no_face")
            continue
        rng = np.random.default_rng([seed, zlib.crc32(rel.as_posix().encode())])
        masked, hole = put_face_masks(rgb, faces, rng, kind=kind, templates=templates, colour=colour,
                                      texture=texture, weight=weight)
        stem = output_dir / rel.with_suffix("")
        image_path, mask_path = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + "_mask.png")
        save_image(image_path, masked)
        save_mask(mask_path, hole)
        yield FaceMaskItem(path, "masked", len(faces), image_path, mask_path)
