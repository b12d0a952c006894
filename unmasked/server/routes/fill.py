"""``POST /api/v1/inpaint``: fill a hole (with a sketch, a reference photo or a face square) via
:func:`unmasked.pipelines.inpaint.inpaint`; this module only translates HTTP."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from unmasked.pipelines.fill import InputError, check_sketch, validate_inputs
from unmasked.pipelines.inpaint import check_box
from unmasked.pipelines.inpaint import inpaint as inpaint_image  # the route below is called inpaint
from unmasked.pipelines.reference import check_reference_box
from unmasked.server import payloads
from unmasked.server.payloads import png_bytes
from unmasked.server.responses import API, image_response, image_responses, openapi_body
from unmasked.server.schemas import InpaintJSON, InpaintParams, InpaintResponse

router = APIRouter()

inpaint_files = {"image": True, "mask": True, "reference": False, "sketch": False}

@router.post(f"{API}/inpaint", tags=["fill"], responses=image_responses(InpaintResponse),
          openapi_extra=openapi_body(InpaintJSON, inpaint_files))
async def inpaint(request: Request) -> Response:
    """Fill the white area of `mask` in `image` with `model`; the result has the input's size and mode.

    Multipart (file parts `image`, `mask`, optional `reference` or `sketch`) or JSON (the same
    fields as base64). `reference_box` is the face square on the reference photo. A sketch (white = line, the image's size) guides models with `uses_sketch`;
    the number of its line pixels inside the hole comes back as `sketch_pixels`.
    Pixels outside the hole are returned unchanged. An empty mask returns the image with a note.
    """
    store, pool, mp = request.app.state.store, request.app.state.pool, request.app.state.settings.max_pixels
    params, blobs = await payloads.parse_request(request, InpaintParams, InpaintJSON, inpaint_files)
    if store.info(params.model).uses_landmarks:
        raise HTTPException(422, f"model {params.model!r} is guided by the face's landmarks, which only /unmask finds; "
                                 "use /unmask, or another face model here")
    store.check_guides(params.model, blobs)

    def job():
        loaded = payloads.read_image(blobs["image"], "image", mp)
        hole = payloads.read_mask(blobs["mask"], mp)
        ref = payloads.read_image(blobs["reference"], "reference", mp).rgb if blobs["reference"] else None
        sketch = payloads.read_mask(blobs["sketch"], mp, "sketch") if blobs["sketch"] else None
        model = store.get(params.model)
        try:
            validate_inputs(loaded.rgb, hole)
            if sketch is not None:
                check_sketch(model, loaded.rgb, sketch)
            if params.box is not None:
                check_box(params.box, hole.shape)
            if params.reference_box is not None:
                if ref is None:
                    raise InputError("reference_box needs a reference photo")
                check_reference_box(params.reference_box, ref.shape[:2])
        except InputError as e:
            raise HTTPException(422, str(e)) from None
        t0 = time.perf_counter()
        try:
            result = inpaint_image(loaded.rgb, hole, model, box=params.box, reference=ref, sketch=sketch,
                                   reference_box=params.reference_box)
        except InputError as e:
            raise HTTPException(400, str(e)) from None
        lines = None if sketch is None else int((sketch & hole).sum())
        note = result.note
        if lines == 0 and hole.any():
            note = "; ".join(filter(None, [note, "the sketch has no line inside the hole: filled as without one"]))
        body = {"width": hole.shape[1], "height": hole.shape[0], "model": params.model, "note": note,
                "elapsed_ms": 1000 * (time.perf_counter() - t0), "sketch_pixels": lines}
        return png_bytes(loaded.to_pil(result.image)), body

    png, body = await pool.run(job)
    return image_response(params.response_format, png, body, InpaintResponse)
