"""The one place that defines how images and masks look inside unmasked.

* **Images** are float32 tensors, NCHW, RGB, values in [-1, 1].
* **Masks** are float tensors N x 1 x H x W with values in {0, 1}, where **1 = hole**
  (the pixels to fill), as in DeepFill, LaMa and diffusers. Partial convolutions use
  1 = valid; that flip happens inside the partial-conv model and nowhere else.
* On disk and at the edges (CLI, server) images are uint8 H x W x 3 arrays; a mask file
  is white (> 127) where the hole is.

Everything that crosses these boundaries goes through the helpers below, so every
caller (CLI, REST server, Python API, training) sees the same rules.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

PathOrFile = str | os.PathLike | BinaryIO | bytes

#: Images with more pixels than this are refused before they are decoded
#: (about 8k x 5k). Callers may pass their own limit.
DEFAULT_MAX_PIXELS = 40_000_000


class ImageReadError(ValueError):
    """An image or mask file could not be read (missing, corrupt, unsupported, too large)."""


class UnsupportedImage(ImageReadError):
    """A file that is no image format Pillow reads (nothing was decoded)."""


class ImageTooLarge(ImageReadError):
    """An image whose header claims more pixels than the limit; nothing was decoded.

    ``size`` is (width, height), or None where Pillow refused the header as a decompression bomb
    before the size could be read; ``limit`` is the pixel limit that applied."""

    def __init__(self, message: str, size: tuple[int, int] | None, limit: int) -> None:
        super().__init__(message)
        self.size, self.limit = size, limit


# --------------------------------------------------------------------------- checks


def check_image(image: torch.Tensor, name: str = "image") -> None:
    """Raise ``ValueError`` unless ``image`` is a float tensor (N, 3, H, W) in [-1, 1]."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, 3, H, W) in [-1, 1], got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], got dtype {image.dtype}")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"{name} values must lie in [-1, 1], got range [{lo:.3f}, {hi:.3f}]")


def check_mask(mask: torch.Tensor, like: torch.Tensor | None = None, name: str = "mask") -> None:
    """Raise ``ValueError`` unless ``mask`` is (N, 1, H, W) with values in {0, 1} (1 = hole).

    If ``like`` is given, N, H and W must match it.
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, 1, H, W) in {{0, 1}}, got {type(mask).__name__}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, 1, H, W) with 1 = hole, got {tuple(mask.shape)}")
    if like is not None and (mask.shape[0] != like.shape[0] or mask.shape[-2:] != like.shape[-2:]):
        raise ValueError(
            f"{name} shape {tuple(mask.shape)} does not match image shape {tuple(like.shape)} (N, H and W must agree)"
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} values must be 0 (keep) or 1 (hole)")


# --------------------------------------------------------------------------- compositing


def composite(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``image``, hole pixels (``mask == 1``) from ``pred``.

    This is the only place where prediction and input are combined; models never do it.
    """
    return pred * mask + image * (1.0 - mask)


# --------------------------------------------------------------------------- padding


@dataclass(frozen=True)
class Padding:
    """Amounts added on each side by :func:`pad_to_multiple` (left, right, top, bottom)."""

    left: int
    right: int
    top: int
    bottom: int


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, Padding]:
    """Pad the last two dims of ``x`` (N, C, H, W) up to a multiple of ``multiple``.

    Padding is split evenly between the two sides. Reflection needs the pad to be smaller
    than the side; for tiny inputs it falls back to replicate padding.
    Returns the padded tensor and the :class:`Padding` to give to :func:`unpad`.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    pad = Padding(pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph == 0 and pw == 0:
        return x, pad
    if mode == "reflect" and (max(pad.top, pad.bottom) >= h or max(pad.left, pad.right) >= w):
        mode = "replicate"
    return F.pad(x, (pad.left, pad.right, pad.top, pad.bottom), mode=mode), pad


def unpad(x: torch.Tensor, pad: Padding) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    h, w = x.shape[-2:]
    return x[..., pad.top : h - pad.bottom, pad.left : w - pad.right]


# --------------------------------------------------------------------------- uint8 <-> tensor


def image_to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (N, H, W, 3) RGB -> float32 (N, 3, H, W) in [-1, 1]."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image array, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected a uint8 array of shape (H, W, 3) or (N, H, W, 3), got {array.shape}")
    if not array.flags.writeable:  # e.g. views of PIL buffers; torch wants writable memory
        array = array.copy()
    t = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


def tensor_to_image(image: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) or (3, H, W) in [-1, 1] -> uint8 (N, H, W, 3) or (H, W, 3), rounded, clipped."""
    squeeze = image.ndim == 3
    if squeeze:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an image tensor of shape (N, 3, H, W), got {tuple(image.shape)}")
    out = ((image.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    out = out.permute(0, 2, 3, 1).contiguous().numpy()
    return out[0] if squeeze else out


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """bool/0-1 (H, W) or (N, H, W) array, True = hole -> float32 (N, 1, H, W) in {0, 1}."""
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise ValueError(f"expected a mask array of shape (H, W) or (N, H, W), got {mask.shape}")
    return torch.from_numpy(np.ascontiguousarray(mask != 0)).float()[:, None]


def tensor_to_mask(mask: torch.Tensor) -> np.ndarray:
    """float (N, 1, H, W) -> bool (N, H, W), True = hole."""
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected a mask tensor of shape (N, 1, H, W), got {tuple(mask.shape)}")
    return (mask[:, 0] > 0.5).cpu().numpy()


# --------------------------------------------------------------------------- files


@dataclass
class LoadedImage:
    """An image read from a file: ``rgb`` uint8 (H, W, 3), plus what is needed to write it back.

    ``alpha`` is the original alpha channel (uint8 (H, W)) or ``None``; ``mode`` is the PIL
    mode of the file ("RGB", "RGBA", "L", ...), so a greyscale file can be saved as greyscale.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    mode: str

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.rgb.shape[0], self.rgb.shape[1]

    def to_pil(self, rgb: np.ndarray | None = None) -> Image.Image:
        """A PIL image in the file's original mode, with ``rgb`` (default: the loaded pixels)."""
        rgb = self.rgb if rgb is None else rgb
        out = Image.fromarray(rgb, "RGB")
        if self.alpha is not None:
            out.putalpha(Image.fromarray(self.alpha, "L"))
            return out
        if self.mode in ("L", "I", "I;16", "F", "1"):
            return out.convert("L")
        return out


def _name(source: PathOrFile, what: str) -> str | os.PathLike:
    """How messages name ``source``: its path, or "uploaded image" for bytes and file objects."""
    return source if isinstance(source, (str, os.PathLike)) else f"uploaded {what}"


def _convert(im: Image.Image, mode: str, source: PathOrFile, what: str) -> Image.Image:
    """``im.convert(mode)``; :class:`ImageReadError` for a colour mode Pillow cannot convert (e.g. LAB to L)."""
    try:
        return im.convert(mode)
    except ValueError:
        raise ImageReadError(f"cannot read {what} {_name(source, what)}: its colour mode {im.mode} is not "
                             "supported (save it as RGB or greyscale)") from None


def _open(source: PathOrFile, what: str, max_pixels: int | None) -> Image.Image:
    name = _name(source, what)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    try:
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        im = Image.open(source)  # lazy: reads the header only
    except FileNotFoundError:
        raise ImageReadError(f"{what} file not found: {name}") from None
    except IsADirectoryError:
        raise ImageReadError(f"{what} path is a directory, not a file: {name}") from None
    except Image.DecompressionBombError as e:  # Pillow refuses the header before our own check can
        raise ImageTooLarge(f"{what} {name} is above the limit of {limit:,} pixels: {e}", None, limit) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:  # SyntaxError: some plugins' bad headers
        raise UnsupportedImage(f"cannot read {what} {name}: not a supported image ({e.__class__.__name__})") from None
    w, h = im.size
    if w * h > limit:
        raise ImageTooLarge(f"{what} {name} is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} pixels",
                            (w, h), limit)
    if w == 0 or h == 0:
        raise ImageReadError(f"{what} {name} is empty ({w}x{h})")
    try:
        im = ImageOps.exif_transpose(im)  # phone photos: honour the orientation tag
        im.load()
    except Exception as e:  # truncated or corrupt pixel data
        raise ImageReadError(f"cannot decode {what} {name}: {e}") from None
    return im


def load_image(source: PathOrFile, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file (path, file object or bytes) as RGB uint8, keeping alpha and mode.

    Greyscale, palette, 16-bit and CMYK files are converted to RGB; an alpha channel is
    kept aside so it can be written back unchanged. Raises :class:`ImageReadError`.
    """
    im = _open(source, "image", max_pixels)
    mode = im.mode
    alpha = None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3].copy()
        rgb = np.asarray(rgba.convert("RGB"))
    elif mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        scale = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, axis=2)
    else:
        rgb = np.asarray(_convert(im, "RGB", source, "image"))
    return LoadedImage(np.ascontiguousarray(rgb), alpha, mode)


def load_mask(source: PathOrFile, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask file as bool (H, W), True = hole.

    A pixel is a hole when its grey level is > 127 (white). If the file has an alpha
    channel, transparent pixels (alpha <= 127) are never holes, so both "white strokes on
    black" and "white strokes on a transparent layer" (as painting tools export) work.
    """
    im = _open(source, "mask", max_pixels)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        grey = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
        return (grey > 127) & (rgba[..., 3] > 127)
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        return a > (32767 if a.max() > 255 else 127)
    return np.asarray(_convert(im, "L", source, "mask")) > 127


def save_image(path: str | os.PathLike, image: np.ndarray | Image.Image) -> None:
    """Write a uint8 (H, W, 3) array or PIL image; the format follows the file suffix.

    The file is written to a temporary name first and renamed, so a crash never leaves a
    half-written output.
    """
    path = Path(path)
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image format for output {path} (use .png, .jpg, .webp, ...)")
    if fmt == "JPEG" and im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGB")
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    im.save(tmp, format=fmt, **kwargs)
    os.replace(tmp, path)


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a bool (H, W) mask as a black/white PNG (white = hole)."""
    save_image(path, Image.fromarray((np.asarray(mask) != 0).astype(np.uint8) * 255, "L"))
