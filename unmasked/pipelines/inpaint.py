"""``inpaint``: the one entry for filling a hole, used by the CLI, the Python API and the REST server.

Every option a caller can give goes through here, so each behaves the same at every door:

* a **sketch** (DeepFill v2's user-guided mode, Yu et al., ICCV 2019): lines the fill follows
  (:func:`unmasked.pipelines.fill.fill_array`);
* a **reference** photo of the same person (Two-Face): the face at the hole is filled with it
  (:func:`unmasked.pipelines.reference.fill_with_reference`);
* a **gallery** of photos: the closest identity's best photo becomes the reference, or the
  model fills without one when no face is similar enough
  (:func:`unmasked.pipelines.reference.match_in_gallery`);
* a **face square** ``box`` = (x, y, w, h): the hole inside it is filled from that crop
  alone (a face the user pointed at), the rest of the hole from the whole image.

Without any of them this is :func:`~unmasked.pipelines.fill.fill_array`. Errors a user can
cause raise :class:`~unmasked.pipelines.fill.InputError` with a one-line message.
"""

from __future__ import annotations

import numpy as np

from unmasked.models.base import InpaintModel
from unmasked.pipelines.fill import FillResult, InputError, check_box, check_sketch, fill_array, model_name
from unmasked.pipelines.reference import Gallery, check_reference_box, fill_with_reference, match_in_gallery

Box = tuple[int, int, int, int]


def inpaint(
    rgb: np.ndarray,
    hole: np.ndarray,
    model: InpaintModel,
    *,
    reference: np.ndarray | None = None,
    gallery=None,
    box: Box | None = None,
    sketch: np.ndarray | None = None,
    reference_box: Box | None = None,
) -> FillResult:
    """Fill ``hole`` (bool (H, W), True = hole) of ``rgb`` (uint8 (H, W, 3)) with ``model``.

    ``reference``: uint8 (H', W', 3), a photo of the same person (reference-guided models).
    ``gallery``: a folder of photos or a :class:`~unmasked.pipelines.reference.Gallery`
    (reference-guided models); ``result.match`` is the photo used, or None. ``box``: the face
    square (x, y, w, h) in ``rgb``. ``sketch``: bool (H, W), True = line (sketch models). At most
    one of ``reference``, ``gallery`` and ``sketch``. ``reference_box``: the face square (x, y, w, h)
    on the reference photo, instead of its largest detected face.
    """
    if reference is not None and gallery is not None:
        raise InputError("give a reference photo or a gallery, not both")
    if reference_box is not None:
        if reference is None:
            raise InputError("a reference face square needs a reference photo")
        check_reference_box(reference_box, reference.shape[:2])
    if sketch is not None:
        if gallery is not None:
            raise InputError("a sketch and a gallery cannot be combined (no shipped model takes both)")
        check_sketch(model, rgb, sketch, reference)
    if reference is not None and not model.uses_reference:
        raise InputError(f"model {model_name(model)!r} does not use a reference photo; leave the reference out")
    if gallery is not None and not model.uses_reference:
        raise InputError(f"model {model_name(model)!r} does not use a reference photo; "
                         "--gallery needs a reference-guided model (e.g. two_face)")
    if box is None:
        return _fill(rgb, hole, model, reference, gallery, sketch, reference_box=reference_box)
    return _fill_with_box(rgb, hole, model, box, reference, gallery, sketch, reference_box)


def _fill(rgb, hole, model, reference, gallery, sketch, face_box: Box | None = None,
          reference_box: Box | None = None) -> FillResult:
    """``face_box``: where the face is (the user's face square), instead of detecting it;
    ``reference_box``: the same on the reference photo."""
    if gallery is not None:
        return _fill_from_gallery(rgb, hole, model, gallery, face_box)
    if reference is not None:
        return fill_with_reference(rgb, hole, model, reference, box=face_box, reference_box=reference_box)
    return fill_array(rgb, hole, model, sketch=sketch)


def _fill_from_gallery(rgb: np.ndarray, hole: np.ndarray, model: InpaintModel, gallery,
                       face_box: Box | None = None) -> FillResult:
    if not isinstance(gallery, Gallery):
        gallery = Gallery.build(gallery, size=model.working_size)
    match = match_in_gallery(rgb, hole, model, gallery)
    if match is None:
        result = fill_array(rgb, hole, model)
        result.note = (f"no gallery face reached similarity {gallery.threshold:.2f}: filled without a reference"
                       + (f"; {result.note}" if result.note else ""))
    else:
        result = fill_with_reference(rgb, hole, model, match.face, reference_is_aligned=True, box=face_box)
        result.note = (f"reference from the gallery: {match.path} (identity {match.identity}, "
                       f"similarity {match.similarity:.3f}, distance {match.distance:.3f}); {result.note}")
    result.match = match
    return result


def _fill_with_box(rgb, hole, model, box: Box, reference, gallery, sketch, reference_box: Box | None = None) -> FillResult:
    """The hole inside ``box`` filled from that crop alone (the sketch cropped with it), then the
    rest of the hole from the whole image."""
    check_box(box, hole.shape)
    x, y, w, h = (int(v) for v in box)
    out = rgb.copy()
    inside = np.zeros_like(hole, dtype=bool)
    inside[y : y + h, x : x + w] = True
    notes = []
    match = None
    if (hole & inside).any():
        lines = None if sketch is None else sketch[y : y + h, x : x + w]
        # the square is the face: a reference is aligned to it rather than to a detection
        crop = _fill(rgb[y : y + h, x : x + w].copy(), hole[y : y + h, x : x + w], model, reference, gallery, lines,
                     face_box=(0, 0, w, h) if reference is not None or gallery is not None else None,
                     reference_box=reference_box)
        out[y : y + h, x : x + w] = crop.image
        match = crop.match
        if crop.note:
            notes.append(crop.note)
    else:
        notes.append("no hole inside the face square")
    if (hole & ~inside).any():
        out = _fill(out, hole & ~inside, model, reference, None, sketch, reference_box=reference_box).image
        notes.append("hole pixels outside the face square were filled from the whole image")
    return FillResult(out, note="; ".join(notes) or None, match=match)
