"""Worn-mask templates: MaskTheFace's RGBA pictures with six key points, and their restyling.

Anwar & Raychowdhury, "Masked Face Recognition for Secure Authentication", arXiv:2008.11104,
2020 (the MaskTheFace tool, MIT licence; this is an independent implementation). A template's six
points correspond to :func:`unmasked.faces.landmarks.six_points` on a face;
:mod:`unmasked.masks.face_mask` warps the template onto it.

Templates come either from a MaskTheFace folder (:meth:`TemplateSet.from_folder`: ``masks.cfg``
plus RGBA PNGs; research data, never copied into this repository) or are drawn procedurally
(:mod:`unmasked.masks.procedural`), annotated with the same six points so both go through the
same homography.

Colour and pattern follow MaskTheFace's ``--color`` / ``--pattern`` options
(:func:`restyle_template`): the template's RGB is blended ``(1 - w) * template + w * overlay``
with a flat colour or a texture picture resized to the template (MaskTheFace's
``textures/`` folder), except that here the overlay is first multiplied by the template's own
relative shading, so pleats and folds survive a dark colour. Real masks are often black, grey
or navy, knitted or printed, none of which the plain templates show:
:func:`random_restyle` draws such variants for training the worn-mask segmenter.
"""

from __future__ import annotations

import configparser
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: named fabric colours (RGB): MaskTheFace's ``--color`` choices and the dark and neutral
#: colours real masks often have
FABRIC_COLOURS = {
    "black": (22, 22, 24), "charcoal": (52, 53, 57), "dimgray": (105, 105, 105), "grey": (150, 150, 152),
    "navy": (28, 38, 78), "cyan_blue": (4, 115, 226), "pink": (255, 192, 203), "olive": (128, 128, 0),
    "white": (244, 244, 242), "beige": (214, 196, 170),
}
#: picture files read as textures from a template folder's ``textures/`` tree
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

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


def random_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array([[[rng.integers(0, 180), rng.integers(40, 230), rng.integers(40, 240)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


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
            colour = random_colour(rng) if rng.random() < 0.2 else names[int(rng.integers(0, len(names)))]
            template = restyle_template(template, colour=colour, weight=weight)
    if rng.random() < 1 / 3:
        template = add_decal(template, rng)
    return template
