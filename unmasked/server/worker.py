"""Bounded work for the REST server: a shared model store and a worker pool with a queue limit.

* :class:`ModelStore` loads each model once (presets, classical baselines and the checkpoint
  files named by whoever starts the server: a request can never make the server open a file
  path) and shares it read-only between threads;
  inference runs under ``torch.no_grad`` in eval mode, which mutates no module state.
* :class:`WorkerPool` runs the CPU-heavy part of a request (decode, fill, encode) on a fixed
  number of threads. At most ``workers + queue_size`` jobs are admitted; beyond that a request
  is answered 503 at once, so memory stays bounded however many clients connect.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from unmasked.api import load_model
from unmasked.hub import DEFAULT_FACE_PRESET, DEFAULT_SCENE_MODEL, DEFAULT_UNMASK_PRESET, catalogue, shipped_weights
from unmasked.registry import list_models
from unmasked.server.schemas import ModelInfo

#: the face preset on faces, the scene filler (Telea's shading + PatchMatch's texture) elsewhere
#: (README, "Which model fills by default"); not offered when either of the two is not
DEFAULT_FILL_MODEL = "auto"
DEFAULT_FACE_MODEL = DEFAULT_FACE_PRESET


class WorkerPool:
    """``await pool.run(fn, *args)``: run ``fn`` on a worker thread, or 503 when the queue is full."""

    def __init__(self, workers: int = 2, queue_size: int = 32):
        if workers < 1 or queue_size < 0:
            raise ValueError(f"need workers >= 1 and queue_size >= 0, got {workers}, {queue_size}")
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unmasked-worker")
        self._lock = threading.Lock()
        self._pending = 0  # admitted and not finished (running + queued)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def running(self) -> int:
        return min(self._pending, self.workers)

    def _release(self, _future=None) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._pending >= self.capacity:
                raise HTTPException(
                    503,
                    f"server busy: {self._pending} requests running or queued (limit {self.capacity}); retry shortly",
                    headers={"Retry-After": "1"},
                )
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._release()
            raise
        # released when the job really ends, even if the client went away and this task was cancelled
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


#: optional guide field -> (ModelInfo flag, what a model without it lacks, who has it, when nobody does)
GUIDES = {"reference": ("uses_reference", "does not use a reference photo", "models that do", "uses one yet"),
          "sketch": ("uses_sketch", "has no sketch channel", "models that have one", "has one")}


class ModelStore:
    """The models the server offers: shipped presets and classical baselines, loaded lazily once each.

    ``checkpoints`` (name -> ``.safetensors`` path) adds trained models from files chosen by
    whoever starts the server (e.g. a fine-tuned preset, or a small model in tests).
    """

    def __init__(self, allowed: list[str] | None = None, checkpoints: dict[str, str | Path] | None = None):
        shipped = shipped_weights()
        clash = sorted(set(checkpoints or {}) & {*shipped, *list_models(trainable=False), "auto"})
        if clash:
            raise ValueError(f"checkpoint name(s) {', '.join(clash)} already name models of the server; pick other names")
        self._paths: dict[str, Path] = {name: Path(path) for name, path in (checkpoints or {}).items()}
        # a landmark-guided face model is offered for /unmask, which finds the landmarks; /inpaint refuses it
        everything = catalogue(self._paths)
        entries = [e for e in everything if e.task == "inpaint" and e.kind != "architecture"]
        names = {e.name for e in entries}
        if DEFAULT_FACE_PRESET not in names or DEFAULT_SCENE_MODEL not in names:  # `auto` needs both of its models
            entries = [e for e in entries if e.kind != "auto"]
        why = {"auto": " (chosen from measurements on faces and scenes)"}
        infos = {e.name: ModelInfo(name=e.name, kind=e.kind, uses_reference=e.uses_reference, uses_sketch=e.uses_sketch,
                                   description=e.description + why.get(e.kind, ""), working_size=e.working_size,
                                   face_model=e.face_model, uses_landmarks=e.uses_landmarks)
                 for e in entries}
        if allowed is not None:
            unknown = sorted(set(allowed) - set(infos))
            if unknown:
                raise ValueError(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(infos)}")
            infos = {n: infos[n] for n in allowed}
        if not infos:
            raise ValueError("the server needs at least one model")
        self.infos = infos
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def users(self, feature: str) -> list[str]:
        """Names of the offered models whose info says ``feature`` (e.g. ``uses_sketch``)."""
        return [n for n, i in self.infos.items() if getattr(i, feature)]

    def check_guides(self, name: str, given: dict) -> None:
        """422 for a reference or sketch (the non-empty ``given`` fields) that model ``name`` cannot use,
        never ignored silently, or for both at once."""
        fields = [field for field in GUIDES if given.get(field)]
        if len(fields) > 1:
            raise HTTPException(422, "a sketch and a reference photo cannot be combined (no model takes both); send one")
        for field in fields:
            flag, lacks, who, nobody = GUIDES[field]
            if not getattr(self.info(name), flag):
                users = self.users(flag)
                hint = f"{who}: {', '.join(users)}" if users else f"no model on this server {nobody}"
                raise HTTPException(422, f"model {name!r} {lacks} ({hint}); leave the {field} out")

    @property
    def loaded(self) -> list[str]:
        return sorted(self._models)

    def default(self, face: bool) -> str | None:
        preferred = DEFAULT_FACE_MODEL if face else DEFAULT_FILL_MODEL
        if preferred in self.infos:
            return preferred
        if not face and "telea" in self.infos:
            return "telea"
        return next((n for n, i in self.infos.items() if i.face_model == face and not i.uses_landmarks),
                    None if face else self.names[0])

    @property
    def default_unmask(self) -> str | None:
        """The face model of /unmask: DEFAULT_UNMASK_PRESET when offered, else the fill's face default."""
        return DEFAULT_UNMASK_PRESET if DEFAULT_UNMASK_PRESET in self.infos else self.default(face=True)

    def info(self, name: str) -> ModelInfo:
        """The model's description; 404 listing the available names when unknown."""
        try:
            return self.infos[name]
        except KeyError:
            raise HTTPException(404, f"unknown model {name!r}; available: {', '.join(self.infos)}") from None

    def get(self, name: str):
        """The loaded model (loaded on first use, under a lock so it happens once)."""
        self.info(name)
        model = self._models.get(name)
        if model is None:
            with self._lock:
                model = self._models.get(name)
                if model is None:
                    model = self._models[name] = load_model(self._paths.get(name, name)).eval()
        return model
