"""The FastAPI application: REST API under ``/api/v1`` and the web UI from the same origin.

``create_app(ServerSettings(...))`` builds an app; ``unmasked serve`` runs one with uvicorn on
127.0.0.1. OpenAPI docs are at ``/docs``. The endpoints call the same pipelines as the CLI
(:func:`unmasked.pipelines.inpaint.inpaint`, :func:`unmasked.pipelines.unmask.unmask_array`,
:func:`unmasked.masks.face_mask.put_face_masks`); this module only translates HTTP.

Status codes: 404 unknown model, 413 body or pixel limit, 415 not an image, 422 bad or
unknown field / size mismatch / a reference or sketch for a model that does not use one (or
both at once) / no face, 400 a mask the fill pipeline refuses (covers the whole image), 503
the worker queue is full.
"""

from __future__ import annotations

import inspect
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from unmasked.faces import detect_faces, face_from_box
from unmasked.masks.face_mask import put_face_masks
from unmasked.pipelines.fill import InputError, check_sketch, validate_inputs
from unmasked.pipelines.inpaint import check_box
from unmasked.pipelines.inpaint import inpaint as inpaint_image  # the route below is called inpaint
from unmasked.pipelines.unmask import unmask_array
from unmasked.server import payloads
from unmasked.server.payloads import BodyTooLarge, b64, header_safe, mask_png, png_bytes
from unmasked.server.schemas import (
    ErrorBody,
    FaceInfo,
    FaceMaskJSON,
    FaceMaskParams,
    FaceMaskResponse,
    Health,
    InpaintJSON,
    InpaintParams,
    InpaintResponse,
    ModelList,
    UnmaskJSON,
    UnmaskParams,
    UnmaskResponse,
)
from unmasked.server.study import StudyStore, study_router
from unmasked.server.worker import ModelStore, WorkerPool
from unmasked.version import __version__

STATIC_DIR = Path(__file__).parent / "static"
API = "/api/v1"


@dataclass
class ServerSettings:
    """Limits and options of one server (all configurable from ``unmasked serve``)."""

    max_pixels: int = 16_000_000  # per image; about a 12 MP phone photo with room to spare
    max_body_bytes: int = 32 * 1024 * 1024
    workers: int = 2
    queue_size: int = 32
    models: list[str] | None = None  # None: every shipped preset and classical baseline
    checkpoints: dict[str, Path] | None = None  # extra trained models: name -> .safetensors file
    study_dir: Path | None = None
    study_db: Path | None = None


# --------------------------------------------------------------------------- body limit


class BodyLimitMiddleware:
    """413 for bodies above ``max_bytes``: at once from Content-Length, else while streaming."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"request body is larger than this server's limit of {self.max_bytes:,} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await JSONResponse({"detail": message}, 413, headers={"Connection": "close"})(scope, receive, send)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(message)
            return msg

        async def tracked_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await JSONResponse({"detail": message}, 413, headers={"Connection": "close"})(scope, receive, send)


# --------------------------------------------------------------------------- helpers


def _image_response(fmt: str, png: bytes, body: dict, response_model) -> Response:
    if fmt == "json":
        return JSONResponse(response_model(image=b64(png), **body).model_dump())
    headers = {"X-Unmasked-Elapsed-Ms": f"{body['elapsed_ms']:.1f}"}
    if body.get("model"):
        headers["X-Unmasked-Model"] = body["model"]
    if body.get("note"):
        headers["X-Unmasked-Note"] = header_safe(body["note"])
    if body.get("faces") is not None:
        headers["X-Unmasked-Faces"] = str(len(body["faces"]))
    if body.get("sketch_pixels") is not None:
        headers["X-Unmasked-Sketch-Pixels"] = str(body["sketch_pixels"])
    return Response(png, media_type="image/png", headers=headers)


def _openapi_body(json_model, files: dict[str, bool]) -> dict:
    """requestBody documentation for an endpoint taking multipart or JSON."""
    schema = json_model.model_json_schema()
    form = {"type": "object", "properties": {}, "required": [k for k, req in files.items() if req]}
    for name, prop in schema["properties"].items():
        form["properties"][name] = {"type": "string", "format": "binary"} if name in files else prop
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form}, "application/json": {"schema": schema}}}}


ERRORS = {code: {"model": ErrorBody} for code in (404, 413, 415, 422, 503)}


def _image_responses(model) -> dict:
    return {200: {"model": model, "content": {"image/png": {}}, "description": "PNG (default) or JSON"}, **ERRORS}


# --------------------------------------------------------------------------- app factory


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """A new app with its own model store, worker pool and (optional) study database."""
    settings = settings or ServerSettings()
    store = ModelStore(settings.models, settings.checkpoints)
    pool = WorkerPool(settings.workers, settings.queue_size)
    study = StudyStore(settings.study_dir, settings.study_db) if settings.study_dir else None

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown()

    app = FastAPI(title="unmasked", version=__version__, lifespan=lifespan,
                  description="Fill holes in photos and remove worn face masks. Errors are JSON `{\"detail\": ...}`.")
    app.state.settings, app.state.store, app.state.pool, app.state.study = settings, store, pool, study
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    mp = settings.max_pixels

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: "
                 f"{'unknown field (not accepted here)' if e['type'] == 'extra_forbidden' else e['msg']}"
                 for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, 422)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request, exc: BodyTooLarge):
        return JSONResponse({"detail": str(exc)}, 413)

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        return JSONResponse({"detail": f"internal error: {exc.__class__.__name__}: {exc}"}, 500)

    @app.get(f"{API}/health", response_model=Health, tags=["server"])
    def health() -> Health:
        return Health(status="ok", version=__version__, running=pool.running, queued=pool.pending - pool.running,
                      capacity=pool.capacity, loaded_models=store.loaded)

    @app.get(f"{API}/models", response_model=ModelList, tags=["models"])
    def models() -> ModelList:
        """The models this server offers, with what they can do."""
        return ModelList(models=list(store.infos.values()), default_fill=store.default(face=False),
                         default_face=store.default(face=True))

    inpaint_files = {"image": True, "mask": True, "reference": False, "sketch": False}

    @app.post(f"{API}/inpaint", tags=["fill"], responses=_image_responses(InpaintResponse),
              openapi_extra=_openapi_body(InpaintJSON, inpaint_files))
    async def inpaint(request: Request) -> Response:
        """Fill the white area of `mask` in `image` with `model`; the result has the input's size and mode.

        Multipart (file parts `image`, `mask`, optional `reference` or `sketch`) or JSON (the same
        fields as base64). A sketch (white = line, the image's size) guides models with `uses_sketch`;
        the number of its line pixels inside the hole comes back as `sketch_pixels`.
        Pixels outside the hole are returned unchanged. An empty mask returns the image with a note.
        """
        params, blobs = await payloads.parse_request(request, InpaintParams, InpaintJSON, inpaint_files)
        store.info(params.model)
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
            except InputError as e:
                raise HTTPException(422, str(e)) from None
            t0 = time.perf_counter()
            try:
                result = inpaint_image(loaded.rgb, hole, model, box=params.box, reference=ref, sketch=sketch)
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
        return _image_response(params.response_format, png, body, InpaintResponse)

    unmask_files = {"image": True, "reference": False}

    @app.post(f"{API}/unmask", tags=["faces"], responses=_image_responses(UnmaskResponse),
              openapi_extra=_openapi_body(UnmaskJSON, unmask_files))
    async def unmask(request: Request) -> Response:
        """Remove worn face masks: find faces (or use `boxes`), fill the mask region, blend back.

        With `response_format=json` the answer also holds the filled region (`mask`) and the faces.
        """
        params, blobs = await payloads.parse_request(request, UnmaskParams, UnmaskJSON, unmask_files)
        store.info(params.model)
        store.check_guides(params.model, blobs)
        extra = {}
        if blobs["reference"] is not None:
            if "reference" not in inspect.signature(unmask_array).parameters:
                raise HTTPException(422, "the unmask pipeline does not take a reference photo yet; leave it out")

        supported = inspect.signature(unmask_array).parameters
        if params.region is not None:
            if "region" not in supported:
                raise HTTPException(422, "region: this version of the unmask pipeline has one region method only")
            extra["region"] = params.region

        def job():
            loaded = payloads.read_image(blobs["image"], "image", mp)
            if blobs["reference"] is not None:
                extra["reference"] = payloads.read_image(blobs["reference"], "reference", mp).rgb
            model = store.get(params.model)
            t0 = time.perf_counter()
            try:
                result = unmask_array(loaded.rgb, model, boxes=params.boxes, detector=params.detector, **extra)
            except ValueError as e:  # boxes outside the photo, input the pipeline refuses
                raise HTTPException(422, str(e)) from None
            region = result.region if result.region is not None else np.zeros(loaded.size, bool)
            detected = getattr(result, "mask", region)  # union of the worn masks found (older pipelines: region)
            faces = [FaceInfo(box=f.box, detector=f.detector, hole_ratio=getattr(f, "hole_ratio", None),
                              mask_found=getattr(f, "mask_found", None), mask_area=getattr(f, "mask_area", None)
                              ).model_dump() for f in result.faces]
            body = {"width": loaded.size[1], "height": loaded.size[0], "model": params.model, "note": result.note,
                    "elapsed_ms": 1000 * (time.perf_counter() - t0), "faces": faces}
            if params.response_format == "json":
                body["mask"], body["detected"] = b64(mask_png(region)), b64(mask_png(detected))
            return png_bytes(loaded.to_pil(result.image)), body

        png, body = await pool.run(job)
        return _image_response(params.response_format, png, body, UnmaskResponse)

    face_files = {"image": True}

    @app.post(f"{API}/masks/face", tags=["faces"], responses=_image_responses(FaceMaskResponse),
              openapi_extra=_openapi_body(FaceMaskJSON, face_files))
    async def face_mask(request: Request) -> Response:
        """Draw a synthetic worn face mask (MaskTheFace method) on every face, or on the given `boxes`."""
        params, blobs = await payloads.parse_request(request, FaceMaskParams, FaceMaskJSON, face_files)

        def job():
            loaded = payloads.read_image(blobs["image"], "image", mp)
            t0 = time.perf_counter()
            try:
                if params.boxes:
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
        return _image_response("image", png, {k: v for k, v in body.items() if k != "mask"}, FaceMaskResponse)

    app.include_router(study_router(lambda: app.state.study), prefix=API)

    @app.get("/study", include_in_schema=False)
    def study_page():
        return FileResponse(STATIC_DIR / "study.html")

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    return app
