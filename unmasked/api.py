"""The Python API: :func:`load_model` and :class:`Inpainter`.

    >>> from unmasked import Inpainter
    >>> Inpainter("telea").fill("photo.jpg", "mask.png").save("filled.png")
    >>> result = unmask("masked_photo.jpg")     # worn face masks found and removed
    >>> result.image, result.faces, result.masks

``Inpainter.fill`` takes paths, bytes, PIL images or arrays, and returns a PIL image of
the input's size and mode (an alpha channel is carried through untouched).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from unmasked import hub
from unmasked.conventions import DEFAULT_MAX_PIXELS, LoadedImage, load_image, load_mask
from unmasked.hub import (  # noqa: F401 (the names callers know them by)
    CHECKPOINT_SUFFIXES,
    DEFAULT_FACE_PRESET,
    DEFAULT_SKETCH_MODEL,
    DEFAULT_UNMASK_PRESET,
    PRESET_ALIASES,
    WEIGHTS_DIR,
    shipped_weights,
)
from unmasked.models.base import InpaintModel
from unmasked.pipelines.auto import AUTO_FACE_MODEL, AUTO_SCENE_MODEL, FaceAwareFill
from unmasked.pipelines.fill import FillResult, InputError, WholeImageFiller
from unmasked.pipelines.inpaint import inpaint
from unmasked.pipelines.unmask import unmask_array


def load_model(spec: str | os.PathLike | InpaintModel | WholeImageFiller) -> InpaintModel | WholeImageFiller:
    """A model from a shipped preset (see ``unmasked models``), a registered baseline name
    (``"telea"``), a checkpoint path (``*.safetensors``), or ``"auto"`` (the face preset on
    faces, ``layout_patchmatch`` elsewhere: :class:`~unmasked.pipelines.auto.FaceAwareFill`); see
    :func:`unmasked.hub.load_model`.

    A learned architecture named without weights raises ``ValueError`` naming the presets.
    """
    if isinstance(spec, WholeImageFiller):
        return spec
    if not isinstance(spec, InpaintModel) and hub.resolve_alias(os.fspath(spec)) == "auto":
        # the pipeline takes its two models loaded; the hub loads them
        return FaceAwareFill(hub.load_model(AUTO_FACE_MODEL), hub.load_model(AUTO_SCENE_MODEL))
    return hub.load_model(spec)


def _as_loaded(source, max_pixels: int) -> LoadedImage:
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, Image.Image):
        import io

        buf = io.BytesIO()
        source.save(buf, format="PNG")
        return load_image(buf.getvalue(), max_pixels)
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError(f"image arrays must be uint8 (H, W, 3), got {source.dtype} {source.shape}")
        return LoadedImage(source, None, "RGB")
    return load_image(source, max_pixels)


def _as_mask(source, max_pixels: int) -> np.ndarray:
    if isinstance(source, np.ndarray):
        if source.ndim != 2:
            raise ValueError(f"mask arrays must be (H, W), got shape {source.shape}")
        return source.astype(bool)
    if isinstance(source, Image.Image):
        return np.asarray(source.convert("L")) > 127
    return load_mask(source, max_pixels)


class Inpainter:
    """Fill holes with one model: ``Inpainter(model).fill(image, mask) -> PIL.Image``."""

    def __init__(self, model: str | os.PathLike | InpaintModel = "telea", max_pixels: int = DEFAULT_MAX_PIXELS):
        self.model = load_model(model)
        if getattr(self.model, "task", "inpaint") != "inpaint":
            raise ValueError(f"{model!r} is a {self.model.task} model, not an inpainting model; see `unmasked models`")
        self.max_pixels = max_pixels

    def fill_result(self, image, mask, reference=None, gallery=None, sketch=None,
                    box=None, reference_box=None) -> tuple[FillResult, LoadedImage]:
        """The :class:`FillResult` (uint8 RGB + note) and the loaded input.

        ``sketch``: lines the fill should follow, for sketch models (``deepfill_v2-sketch``): a
        path, bytes, PIL image (white (> 127) = line) or bool (H, W) array, the image's size;
        lines outside the hole are ignored. A model without a sketch channel raises ``InputError``.

        ``reference``: a photo of the same person (reference-guided models only). ``gallery``:
        a folder of photos or a :class:`~unmasked.pipelines.reference.Gallery`; the closest
        identity's best photo becomes the reference (``result.match``), or, when no face of the
        gallery is similar enough, the model fills without one (``result.match`` is None).

        ``box``: the face square (x, y, w, h) in ``image``, for a face the detector misses: the
        hole inside it is filled as a face, aligned in that square (as the web page's face square).
        """
        loaded = _as_loaded(image, self.max_pixels)
        hole = _as_mask(mask, self.max_pixels)
        lines = None
        if sketch is not None:
            try:
                lines = _as_mask(sketch, self.max_pixels)
            except ValueError as e:
                raise InputError(f"sketch: {e}") from None
        ref = None if reference is None else _as_loaded(reference, self.max_pixels).rgb
        return inpaint(loaded.rgb, hole, self.model, reference=ref, gallery=gallery, sketch=lines, box=box,
                       reference_box=reference_box), loaded

    def fill(self, image, mask, reference=None, gallery=None, sketch=None, box=None, reference_box=None) -> Image.Image:
        """Filled image, same size and mode as ``image``; pixels outside the hole unchanged.
        ``sketch``: lines to follow (sketch models only); ``box``: the face square (``reference_box``:
        on the reference); see :meth:`fill_result`."""
        result, loaded = self.fill_result(image, mask, reference, gallery, sketch, box, reference_box)
        return loaded.to_pil(result.image)


def unmask(
    image,
    *,
    model: str | os.PathLike | InpaintModel = DEFAULT_UNMASK_PRESET,
    region: str = "segmenter",
    boxes=None,
    detector: str = "blazeface",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **options,
):
    """Remove worn face masks from ``image`` (path, bytes, PIL image or uint8 (H, W, 3) array).

    Returns an :class:`unmasked.pipelines.unmask.UnmaskResult`: ``image`` uint8 (H, W, 3) RGB (same
    size; pixels away from masked faces unchanged), ``faces`` (box, ``mask_found``, ``mask_area``
    per face), ``masks`` (one bool (H, W) worn-mask map per face), ``note``. ``region`` is
    "segmenter" (learned; faces without a mask are left untouched) or "landmarks" (heuristic);
    ``options`` go to :func:`unmasked.pipelines.unmask.unmask_array` (``min_area``, ``dilate``, ``zooms`` (``()``: no reframing),
    ``reference`` (a photo, path or array; ``reference_box``, x, y, w, h: its face square) or
    ``gallery`` (a folder) for reference-guided models, ...).
    """
    loaded = _as_loaded(image, max_pixels)
    if options.get("reference") is not None:
        options["reference"] = _as_loaded(options["reference"], max_pixels).rgb
    return unmask_array(loaded.rgb, load_model(model), boxes=boxes, detector=detector, region=region, **options)
