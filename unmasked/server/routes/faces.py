"""``POST /api/v1/unmask`` (remove worn face masks, :func:`unmasked.pipelines.unmask.unmask_array`) and
``POST /api/v1/masks/face`` (draw synthetic ones, :func:`unmasked.masks.face_mask.put_face_masks`)."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from unmasked.faces import detect_faces, face_from_box
from unmasked.masks.face_mask import put_face_masks
from unmasked.pipelines.inpaint import check_box
from unmasked.pipelines.unmask import MEAN_FACE_CHOICES, unmask_array
from unmasked.server import payloads
from unmasked.server.payloads import b64, mask_png, png_bytes
from unmasked.server.responses import API, image_response, image_responses, openapi_body
from unmasked.server.schemas import (
    FaceInfo,
    FaceMaskJSON,
    FaceMaskParams,
    FaceMaskResponse,
    UnmaskJSON,
    UnmaskParams,
    UnmaskResponse,
)

router = APIRouter()

unmask_files = {"image": True, "reference": False}

@router.post(f"{API}/unmask", tags=["faces"], responses=image_responses(UnmaskResponse),
          openapi_extra=openapi_body(UnmaskJSON, unmask_files))
async def unmask(request: Request) -> Response:
    """Remove worn face masks: find faces (or use `boxes`), fill the mask region, blend back.

    With `response_format=json` the answer also holds the filled region (`mask`) and the faces.
    """
    store, pool, mp = request.app.state.store, request.app.state.pool, request.app.state.settings.max_pixels
    params, blobs = await payloads.parse_request(request, UnmaskParams, UnmaskJSON, unmask_files)
    name = params.model or store.default_unmask
    if name is None:
        raise HTTPException(422, "this server offers no face model; name one with `model`")
    store.info(name)
    store.check_guides(name, blobs)
    extra = {} if params.region is None else {"region": params.region}
    extra["mean_face"] = MEAN_FACE_CHOICES[params.mean_face]
    extra["mean_texture"] = params.mean_texture
    extra["mean_chroma"] = params.mean_chroma
    extra["grain"] = params.grain
    extra["second_look"] = params.second_look
    extra["ear_loops"] = params.ear_loops

    def job():
        loaded = payloads.read_image(blobs["image"], "image", mp)
        if blobs["reference"] is not None:
            extra["reference"] = payloads.read_image(blobs["reference"], "reference", mp).rgb
        if params.reference_box is not None:
            extra["reference_box"] = params.reference_box
        model = store.get(name)
        t0 = time.perf_counter()
        try:
            result = unmask_array(loaded.rgb, model, boxes=params.boxes, detector=params.detector, **extra)
        except ValueError as e:  # boxes outside the photo, input the pipeline refuses
            raise HTTPException(422, str(e)) from None
        region = result.region if result.region is not None else np.zeros(loaded.size, bool)
        detected = getattr(result, "mask", region)  # union of the worn masks found (older pipelines: region)
        faces = [FaceInfo(box=f.box, detector=f.detector, hole_ratio=getattr(f, "hole_ratio", None),
                          mask_found=getattr(f, "mask_found", None), mask_area=getattr(f, "mask_area", None),
                          mean_face=getattr(f, "mean_face", None)).model_dump() for f in result.faces]
        body = {"width": loaded.size[1], "height": loaded.size[0], "model": name, "note": result.note,
                "elapsed_ms": 1000 * (time.perf_counter() - t0), "faces": faces}
        if params.response_format == "json":
            body["mask"], body["detected"] = b64(mask_png(region)), b64(mask_png(detected))
        return png_bytes(loaded.to_pil(result.image)), body

    png, body = await pool.run(job)
    return image_response(params.response_format, png, body, UnmaskResponse)


face_files = {"image": True}

@router.post(f"{API}/masks/face", tags=["faces"], responses=image_responses(FaceMaskResponse),
          openapi_extra=openapi_body(FaceMaskJSON, face_files))
async def face_mask(request: Request) -> Response:
    """Draw a synthetic worn face mask (MaskTheFace method) on every face, or on the given `boxes`."""
    pool, mp = request.app.state.pool, request.app.state.settings.max_pixels
    params, blobs = await payloads.parse_request(request, FaceMaskParams, FaceMaskJSON, face_files)

    def job():
        loaded = payloads.read_image(blobs["image"], "image", mp)
        t0 = time.perf_counter()
        try:
            if params.boxes:
                for b in params.boxes:  # as /unmask: a square off the photo is refused, never drawn off it
                    check_box(b, loaded.size)
                faces = [face_from_box(loaded.rgb, tuple(b)) for b in params.boxes]
            else:
                faces = detect_faces(loaded.rgb, detector=params.detector)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        if not faces:
            raise HTTPException(422, "no face found in the image; give the face square(s) with boxes=x,y,w,h")
        masked, hole = put_face_masks(loaded.rgb, faces, np.random.default_rng(params.seed), kind=params.kind)
        faces_out = [FaceInfo(box=f.box, detector=f.detector).model_dump() for f in faces]
        body = {"width": loaded.size[1], "height": loaded.size[0], "faces": faces_out,
                "elapsed_ms": 1000 * (time.perf_counter() - t0), "mask": b64(mask_png(hole))}
        return png_bytes(loaded.to_pil(masked)), body

    png, body = await pool.run(job)
    if params.response_format == "json":
        return JSONResponse(FaceMaskResponse(image=b64(png), **body).model_dump())
    return image_response("image", png, {k: v for k, v in body.items() if k != "mask"}, FaceMaskResponse)
