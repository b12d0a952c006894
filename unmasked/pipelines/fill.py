"""Fill the holes of an image with any registered model or baseline.

The one path that the CLI, the REST server and the Python API share:

* any size in, same size out; pixels outside the hole are returned byte for byte;
* the input is padded to the model's ``multiple`` and unpadded after;
* a model with ``classical_blend`` (a shipped preset's metadata) is blended with a diffusion
  fill near the hole boundary, at the model's input resolution (see :func:`blend_with_classical`);
* a whole-image filler (a :class:`WholeImageFiller`, such as ``auto``:
  :class:`~unmasked.pipelines.auto.FaceAwareFill`) is handed the whole image: it fills faces
  with the face model and the rest with a classical fill;
* for images larger than a model's ``working_size`` each hole region is filled from a crop
  around it (hole bounding box plus a margin), resized to the working size, filled,
  resized back, and only that region's hole pixels are pasted (the strategy IOPaint calls
  "crop"); regions are filled one after another, so later crops see earlier fills.

This is the fill of one image by one model. A reference photo, a gallery or a face square
go through :func:`unmasked.pipelines.inpaint.inpaint`, the entry every caller uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from unmasked.conventions import composite, image_to_tensor, mask_to_tensor, pad_to_multiple, tensor_to_image, unpad
from unmasked.data.landmark_guide import draw_guide
from unmasked.models.base import InpaintModel


class InputError(ValueError):
    """The user's input cannot be filled (size mismatch, mask covering everything, ...)."""


@dataclass
class FillResult:
    """``image``: uint8 (H, W, 3); ``note``: a remark for the user (e.g. empty mask), or None;
    ``match``: the gallery photo used as the reference (a ``GalleryMatch``), if any."""

    image: np.ndarray
    note: str | None = None
    regions: int = 0
    match: object | None = None


class WholeImageFiller:
    """A filler that is a pipeline, not a network: it is handed the whole image by
    :func:`fill_array` (``fill(rgb, hole) -> FillResult``) and chooses what fills where, such as
    ``auto`` (:class:`~unmasked.pipelines.auto.FaceAwareFill`). It carries the attributes the
    callers read off a model (no reference, no sketch, no working size) and a ``config`` naming it."""

    uses_reference = False
    uses_sketch = False
    working_size: int | None = None
    trainable = False
    task = "inpaint"
    classical_blend = None
    config: dict

    def fill(self, rgb: np.ndarray, hole: np.ndarray) -> FillResult:
        raise NotImplementedError

    def eval(self) -> WholeImageFiller:
        """``self``, as ``Module.eval()`` returns: callers that put a loaded model in eval mode
        (the REST server's model store) take a pipeline too; its own models are loaded in eval mode."""
        return self


def check_box(box, shape: tuple[int, int], what: str = "box", image: str = "image") -> None:
    """Raise :class:`InputError` unless the square ``box`` (x, y, w, h) has a positive size and lies
    wholly inside an image of ``shape`` (H, W); ``what`` and ``image`` name them in the message."""
    x, y, w, h = (int(v) for v in box)
    height, width = shape
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise InputError(f"{what} {x},{y},{w},{h} (x,y,w,h) lies outside the {width}x{height} {image}")


def validate_image(rgb: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``rgb`` is uint8 (H, W, 3)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"image must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")


def validate_inputs(rgb: np.ndarray, hole: np.ndarray) -> None:
    """Raise :class:`InputError` for mismatched or malformed image/mask arrays."""
    validate_image(rgb)
    if hole.ndim != 2:
        raise InputError(f"mask must be (H, W), got shape {hole.shape}")
    if hole.shape != rgb.shape[:2]:
        raise InputError(
            f"mask size {hole.shape[1]}x{hole.shape[0]} does not match image size {rgb.shape[1]}x{rgb.shape[0]} (width x height)"
        )


def model_name(model: InpaintModel) -> str:
    """The name a user knows the model by (its preset or registry name)."""
    return (getattr(model, "config", None) or {}).get("name") or type(model).__name__


def check_sketch(model: InpaintModel, rgb: np.ndarray, sketch: np.ndarray, reference: np.ndarray | None = None) -> None:
    """Raise :class:`InputError` unless ``model`` takes a sketch and ``sketch`` is a (H, W) map of ``rgb``'s size."""
    if not getattr(model, "uses_sketch", False):
        raise InputError(f"model {model_name(model)!r} has no sketch channel; use a sketch model "
                         "(e.g. deepfill_v2-sketch) or leave the sketch out")
    if reference is not None:
        raise InputError("a sketch and a reference photo cannot be combined (no shipped model takes both)")
    if sketch.ndim != 2:
        raise InputError(f"sketch must be (H, W), got shape {sketch.shape}")
    if sketch.shape != rgb.shape[:2]:
        raise InputError(f"sketch size {sketch.shape[1]}x{sketch.shape[0]} does not match image size "
                         f"{rgb.shape[1]}x{rgb.shape[0]} (width x height)")


#: OpenCV flags of the diffusion fills that :func:`blend_with_classical` can use
#: the diffusion fills a ``classical_blend`` may name (:data:`unmasked.checkpoint.CLASSICAL_BLEND_METHODS`)
CLASSICAL_FLAGS = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}


def blend_width(blend: dict, sketch: np.ndarray | None, hole: np.ndarray) -> float:
    """The diffusion ring's width for one call: ``sketch_width`` when a sketch has lines in the hole."""
    if sketch is not None and "sketch_width" in blend and bool((sketch & hole).any()):
        return blend["sketch_width"]
    return blend["width"]


def blend_with_classical(rgb: np.ndarray, hole: np.ndarray, filled: np.ndarray, method: str, width: float,
                         radius: int = 3) -> np.ndarray:
    """Blend a learned fill with a diffusion fill by the distance to the hole's boundary.

    Inside the hole, ``w = clip((d - 1) / width, 0, 1)`` where ``d`` is the Euclidean distance
    (px) to the nearest known pixel: the outermost ring of hole pixels is the diffusion fill,
    pixels ``width + 1`` px deep and more are the model's. Thin strokes (narrower than about
    ``2 * width``) are therefore filled mostly by diffusion, which is hard to beat there, and
    large holes by the model. The PConv paper's own comparison shows diffusion winning on
    thin holes; this is the hybrid its issue allows, stated in the model card.
    """
    hole = hole.astype(bool)
    hole8 = hole.astype(np.uint8)
    classical = cv2.inpaint(np.ascontiguousarray(rgb), hole8, radius, CLASSICAL_FLAGS[method])
    depth = cv2.distanceTransform(hole8, cv2.DIST_L2, 3)
    w = np.clip((depth - 1.0) / width, 0.0, 1.0)[..., None]
    out = np.round(w * filled.astype(np.float32) + (1.0 - w) * classical.astype(np.float32))
    out = out.astype(np.uint8)
    out[~hole] = rgb[~hole]
    return out


def refine_with_exemplars(rgb: np.ndarray, hole: np.ndarray, guide: np.ndarray, spec: dict) -> np.ndarray:
    """Refine a network's fill ``guide`` of ``hole`` in ``rgb`` with the photo's own patches.

    The hybrid that the object-removal issue allows when photos are too few for a network to
    paint texture: the network lays out structure and colour, and multi-scale PatchMatch with
    voting (Wexler et al. 2007; Barnes et al. 2009; :func:`~unmasked.baselines.patchmatch.
    patchmatch_inpaint`) starts from it (its pyramid stops at ``min_size``, where the guide's
    layout is still resolved) and replaces its blur by texture copied from the known region. It
    runs at the image's own resolution up to ``max_side`` (larger crops are refined at that size
    and resized back), so a large photo's fill carries the photo's grain, not a 128-px texture.
    """
    # imported here: numba's start-up cost is paid only by models that refine with PatchMatch
    from unmasked.baselines.patchmatch import patchmatch_inpaint

    h, w = hole.shape
    scale = min(1.0, spec["max_side"] / max(h, w))
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        small = patchmatch_inpaint(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), small_hole,
                                   guide=cv2.resize(guide, size, interpolation=cv2.INTER_AREA),
                                   patch_size=spec["patch_size"], min_size=spec["min_size"])
        refined = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        refined = patchmatch_inpaint(rgb, hole, guide=guide, patch_size=spec["patch_size"], min_size=spec["min_size"])
    out = rgb.copy()
    out[hole] = refined[hole]
    return out


def _as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return image_to_tensor(rgb).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def run_model(
    model: InpaintModel, rgb: np.ndarray, hole: np.ndarray, reference: np.ndarray | None = None,
    sketch: np.ndarray | None = None, avoid: np.ndarray | None = None, landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """One forward pass at the given resolution (padded to ``model.multiple``); composited uint8.
    ``avoid`` bool (H, W): known pixels a patch-copying filler (``uses_avoid``) must not copy.
    ``landmarks`` (68, 2) in ``rgb``'s pixels: drawn as the guide of a landmark-guided model."""
    image = _as_tensor(rgb)
    mask = mask_to_tensor(hole)
    padded, pad = pad_to_multiple(image, model.multiple)
    padded_mask, _ = pad_to_multiple(mask, model.multiple, mode="constant")
    kwargs = {}
    if reference is not None and model.uses_reference:
        kwargs["reference"] = _as_tensor(reference)
    if sketch is not None:
        kwargs["sketch"] = pad_to_multiple(mask_to_tensor(sketch & hole), model.multiple, mode="constant")[0]
    if getattr(model, "uses_landmarks", False):
        if landmarks is None:
            raise InputError("this model is guided by the face's landmarks: fill faces with it through unmask")
        drawn = torch.from_numpy(draw_guide(landmarks, hole.shape, getattr(model, "guide_kind", "lines")))[None, None]
        kwargs["guide"] = pad_to_multiple(drawn, model.multiple, mode="constant")[0]
    if avoid is not None and getattr(model, "uses_avoid", False) and avoid.any():
        kwargs["avoid"] = pad_to_multiple(mask_to_tensor(avoid & ~hole), model.multiple, mode="constant")[0]
    # the hole's original content must not leak into the model: zero it before the call
    out = model(padded * (1 - padded_mask), padded_mask, **kwargs).image
    filled = tensor_to_image(composite(unpad(out, pad), image, mask))[0]
    blend = getattr(model, "classical_blend", None)
    if blend:
        filled = blend_with_classical(rgb, hole, filled, blend["method"], blend_width(blend, sketch, hole))
    return filled


def _regions(hole: np.ndarray, merge_px: int) -> list[np.ndarray]:
    """Hole pixels grouped into regions (components after dilating by ``merge_px``)."""
    grown = cv2.dilate(hole.astype(np.uint8), np.ones((2 * merge_px + 1,) * 2, np.uint8))
    n, labels = cv2.connectedComponents(grown, connectivity=8)
    return [(labels == i) & hole for i in range(1, n)]


def _crop_box(region: np.ndarray, shape: tuple[int, int], margin: float, min_margin: int) -> tuple[int, int, int, int]:
    """A square-ish window around ``region`` with a margin, shifted to stay inside the image."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    side = int(side + 2 * max(min_margin, margin * side))
    h, w = shape
    boxes = []
    for lo, hi, size in ((y0, y1, h), (x0, x1, w)):
        length = min(side, size)
        start = (lo + hi) // 2 - length // 2
        start = int(np.clip(start, 0, size - length))
        boxes.append((start, start + length))
    (top, bottom), (left, right) = boxes
    return top, bottom, left, right


def fill_array(
    rgb: np.ndarray,
    hole: np.ndarray,
    model: InpaintModel,
    *,
    sketch: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    margin: float = 0.5,
    min_margin: int = 16,
) -> FillResult:
    """Fill ``hole`` (bool (H, W), True = hole) of ``rgb`` (uint8 (H, W, 3)) with ``model``.

    ``margin`` is the context added around each hole region for models with a working
    size, as a fraction of the region's size (at least ``min_margin`` pixels).

    ``sketch``: bool (H, W), True = a line the fill should follow (DeepFill v2's user-guided
    mode, models with ``uses_sketch``); lines outside the hole are ignored. Raises
    :class:`InputError` for a model without a sketch channel, never ignores it silently.

    ``avoid``: bool (H, W), known pixels that a patch-copying filler (``uses_avoid``: PatchMatch,
    ``telea_patchmatch``) must not copy into the hole; other models ignore it. ``auto`` passes the
    faces it finds. A reference-guided model fills here without its reference (use
    :func:`unmasked.pipelines.inpaint.inpaint` to give it one).

    ``landmarks``: float (68, 2), the face's 68 landmarks in ``rgb``'s pixels, which a
    landmark-guided model (``uses_landmarks``) needs (``unmask`` passes FaceMesh's); raises
    :class:`InputError` without them (:func:`run_model`), or with them for a model that takes none.
    """
    if landmarks is not None:
        if not getattr(model, "uses_landmarks", False):
            raise InputError(f"{type(model).__name__} takes no landmarks")
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
            raise InputError(f"landmarks must be finite (68, 2), got {landmarks.shape}")
    if sketch is not None:
        check_sketch(model, rgb, sketch)
        sketch = sketch.astype(bool)
    if isinstance(model, WholeImageFiller):  # `auto`: picks a model per face, needs the whole image
        return model.fill(rgb, hole)
    validate_inputs(rgb, hole)
    hole = hole.astype(bool)
    if avoid is not None:
        if avoid.shape != hole.shape:
            raise InputError(f"avoid mask {avoid.shape} must have the image's shape {hole.shape}")
        avoid = avoid.astype(bool)
    if not hole.any():
        return FillResult(rgb.copy(), note="mask is empty: image copied unchanged")
    if hole.all():
        raise InputError("mask covers the whole image: there are no known pixels to fill from")

    model.eval()
    size = model.working_size
    h, w = hole.shape
    refine = getattr(model, "exemplar_refine", None)
    if size is None or max(h, w) <= size:
        filled = run_model(model, rgb, hole, sketch=sketch, avoid=avoid, landmarks=landmarks)
        if refine:
            filled = refine_with_exemplars(rgb, hole, filled, refine)
        out = rgb.copy()
        out[hole] = filled[hole]
        return FillResult(out, regions=1)

    out = rgb.copy()
    remaining = hole.copy()
    if refine and max(h, w) <= refine["max_side"]:
        # the model's fill is only PatchMatch's guide at its coarsest scale: one call on the whole
        # hole at the working size is enough, however scattered the hole is
        regions = [hole]
    else:
        regions = _regions(hole, merge_px=max(min_margin, size // 16))
    for region in regions:
        top, bottom, left, right = _crop_box(region, (h, w), margin, min_margin)
        crop, crop_hole = out[top:bottom, left:right], remaining[top:bottom, left:right]
        crop_avoid = None if avoid is None else avoid[top:bottom, left:right]
        ch, cw = crop_hole.shape
        scale = size / max(ch, cw)
        if scale < 1:
            small = (max(1, round(cw * scale)), max(1, round(ch * scale)))
            crop_in = cv2.resize(crop, small, interpolation=cv2.INTER_AREA)
            # any coverage makes a hole, so thin strokes survive down-sampling
            hole_in = cv2.resize(crop_hole.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0
            if hole_in.all():
                hole_in[0, 0] = False  # degenerate crop: keep one known pixel for the model
            # a line is kept wherever it covers any part of a down-sampled pixel, as holes are
            lines = None if sketch is None else cv2.resize(
                sketch[top:bottom, left:right].astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0
            avoid_in = None if crop_avoid is None else cv2.resize(
                crop_avoid.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0
            points = None if landmarks is None else (landmarks - [left, top] + 0.5) * (
                [small[0] / cw, small[1] / ch]) - 0.5
            filled = run_model(model, crop_in, hole_in, sketch=lines, avoid=avoid_in, landmarks=points)
            filled = cv2.resize(filled, (cw, ch), interpolation=cv2.INTER_CUBIC)
        else:
            lines = None if sketch is None else sketch[top:bottom, left:right]
            points = None if landmarks is None else landmarks - [left, top]
            filled = run_model(model, crop, crop_hole, sketch=lines, avoid=crop_avoid, landmarks=points)
        if refine:  # at the crop's own resolution (up to refine["max_side"])
            filled = refine_with_exemplars(crop, crop_hole, filled, refine)
        paste = region[top:bottom, left:right]
        crop[paste] = filled[paste]  # crop is a view of out
        remaining[top:bottom, left:right] &= ~paste
    return FillResult(out, regions=len(regions))
