"""Reading requests and writing responses: multipart or JSON in, PNG or JSON out, errors as 4xx.

Error codes (the body is always ``{"detail": "..."}``):

* 413: the body is above ``max_body_bytes``, or an image has more pixels than ``max_pixels``
  (read from the file header with ``PIL.Image.open``, which is lazy: nothing is decoded);
* 415: an upload that is not a readable image, or a request that is neither multipart nor JSON;
* 422: a missing, malformed or unknown field (bad base64 included), a mask of another size.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings

import numpy as np
from fastapi import HTTPException, Request
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from unmasked.conventions import ImageReadError, ImageTooLarge, LoadedImage, UnsupportedImage, load_image, load_mask


class BodyTooLarge(Exception):
    """Raised from ``receive`` when more bytes arrive than the limit allows."""


def validation_message(error: ValidationError) -> str:
    """One line from pydantic's error list: ``field: message; field: message``."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("body",)) or "body"
        msg = "unknown field (not accepted here)" if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- requests


def _b64decode(field: str, text) -> bytes:
    if not isinstance(text, str):
        raise HTTPException(422, f"{field}: expected a base64 string, got {type(text).__name__}")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"{field}: not valid base64") from None


async def parse_request(
    request: Request, params_model: type[BaseModel], json_model: type[BaseModel], files: dict[str, bool]
) -> tuple[BaseModel, dict[str, bytes | None]]:
    """The validated non-image fields and the raw bytes of each image field.

    ``files`` maps image field names to whether they are required. Multipart requests carry
    images as file parts; JSON requests as base64 strings (validated with ``json_model``).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    blobs: dict[str, bytes | None] = dict.fromkeys(files)
    if ctype == "multipart/form-data":
        values: dict[str, str] = {}
        async with request.form(max_files=len(files) + 4, max_fields=32) as form:
            for key, value in form.multi_items():
                if key in values or blobs.get(key) is not None:
                    raise HTTPException(422, f"{key}: given more than once")
                if isinstance(value, UploadFile):
                    if key not in files:
                        raise HTTPException(422, f"{key}: unknown file field; image fields here: {', '.join(files)}")
                    blobs[key] = await value.read()
                elif key in files:
                    if value == "":  # an empty optional file input in a browser form
                        continue
                    raise HTTPException(422, f"{key}: must be a file upload in a multipart request")
                else:
                    values[key] = value
        try:
            params = params_model.model_validate(values)
        except ValidationError as e:
            raise HTTPException(422, validation_message(e)) from None
    elif ctype == "application/json":
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise HTTPException(422, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(422, "body must be a JSON object")
        try:
            json_model.model_validate(data)
        except ValidationError as e:
            raise HTTPException(422, validation_message(e)) from None
        for key in files:
            value = data.pop(key, None)
            blobs[key] = None if value is None else _b64decode(key, value)
        params = params_model.model_validate(data)
    else:
        raise HTTPException(415, f"send multipart/form-data or application/json, not {ctype or 'no content type'}")
    for key, required in files.items():
        if required and not blobs[key]:
            raise HTTPException(422, f"{key}: field required")
    return params, blobs


# --------------------------------------------------------------------------- images


def _read(reader, data: bytes, what: str, max_pixels: int):
    """``reader`` (:func:`~unmasked.conventions.load_image` or ``load_mask``, the one reader of
    every door) on an upload: 413 above ``max_pixels`` (read from the header, nothing decoded),
    415 if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return reader(data, max_pixels)
    except ImageTooLarge as e:
        if e.size is None:
            raise HTTPException(413, f"{what} has too many pixels (limit {e.limit:,})") from None
        w, h = e.size
        raise HTTPException(413, f"{what} is {w}x{h} = {w * h:,} pixels, above this server's limit of {e.limit:,}") from None
    except UnsupportedImage:
        raise HTTPException(415, f"{what} is not a supported image (send PNG, JPEG, WebP, BMP, TIFF or GIF)") from None
    except ImageReadError as e:  # decodable header, broken pixel data
        raise HTTPException(415, f"{what}: {e}") from None


def read_image(data: bytes, what: str, max_pixels: int) -> LoadedImage:
    """Decode an uploaded image (uint8 RGB + alpha/mode); 413 / 415 as :func:`_read`."""
    return _read(load_image, data, what, max_pixels)


def read_mask(data: bytes, max_pixels: int, what: str = "mask") -> np.ndarray:
    """Decode an uploaded mask as bool (H, W), True = hole (white, or white on a transparent layer).

    A sketch is read the same way (``what="sketch"``): True = a line the fill should follow.
    """
    return _read(load_mask, data, what, max_pixels)


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def mask_png(mask: np.ndarray) -> bytes:
    return png_bytes(Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255, "L"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def header_safe(text: str) -> str:
    """HTTP headers are latin-1: keep notes readable and never fail on them."""
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")
