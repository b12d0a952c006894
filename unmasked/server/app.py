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

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from unmasked.server.payloads import BodyTooLarge
from unmasked.server.responses import API
from unmasked.server.routes import faces as face_routes
from unmasked.server.routes import fill as fill_routes
from unmasked.server.schemas import (
    Health,
    ModelList,
)
from unmasked.server.study import StudyStore, study_router
from unmasked.server.worker import ModelStore, WorkerPool
from unmasked.version import __version__

STATIC_DIR = Path(__file__).parent / "static"


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
                         default_face=store.default(face=True), default_unmask=store.default_unmask)

    app.include_router(fill_routes.router)
    app.include_router(face_routes.router)
    app.include_router(study_router(lambda: app.state.study), prefix=API)

    @app.get("/study", include_in_schema=False)
    def study_page():
        return FileResponse(STATIC_DIR / "study.html")

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    return app
