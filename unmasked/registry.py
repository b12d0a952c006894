"""Model registry: ``@register_model("name")``, :func:`create_model`, :func:`list_models`.

Models and classical baselines share one namespace, so every caller (``unmasked fill
--model telea``, ``unmasked eval --model a --model b``, the REST API) names them alike.
Constructor keyword arguments are the configuration; every model records them on itself when
it is built (``model.config``, see :class:`unmasked.models.base.Model`), so
:mod:`unmasked.checkpoint` can rebuild it later.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unmasked.models.base import Model

_REGISTRY: dict[str, ModelEntry] = {}
# modules whose import registers the built-in models
_BUILTIN_MODULES = tuple(f"unmasked.models.{m}" for m in ("deepfill_v2", "face_identity", "face_refiner",
                                                              "mask_segmenter", "pconv_unet", "scene_layout", "two_face")) + ("unmasked.baselines",)


class UnknownModelError(ValueError):
    """A model name that is not registered."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type
    description: str

    @property
    def trainable(self) -> bool:
        return bool(getattr(self.cls, "trainable", True))

    @property
    def uses_reference(self) -> bool:
        return bool(getattr(self.cls, "uses_reference", False))

    @property
    def task(self) -> str:
        return str(getattr(self.cls, "task", "inpaint"))


def register_model(name: str, description: str = "") -> Callable[[type], type]:
    """Class decorator adding a :class:`~unmasked.models.base.Model` subclass to the registry under ``name``."""

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise TypeError(f"@register_model({name!r}) needs a Model subclass (InpaintModel, SegmentModel, "
                            f"EmbedModel), got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.cls is not cls:
            raise ValueError(f"model name {name!r} is already registered by {existing.cls.__module__}")
        doc = description or (inspect.getdoc(cls) or "").split("\n")[0]
        _REGISTRY[name] = ModelEntry(name, cls, doc)
        cls.registry_name = name
        return cls

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def list_models(trainable: bool | None = None, task: str | None = "inpaint") -> list[str]:
    """Sorted names of registered models; ``trainable=False`` lists only classical baselines.

    ``task``: "inpaint" (default: models that fill holes), "segment" (e.g. ``mask_segmenter``)
    or ``None`` for all.
    """
    _load_builtins()
    return sorted(n for n, e in _REGISTRY.items()
                  if (trainable is None or e.trainable == trainable) and (task is None or e.task == task))


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; raises :class:`UnknownModelError` listing valid names."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(list_models(task=None))}") from None


def create_model(name: str, **kwargs: Any) -> Model:
    """Build model ``name`` with constructor ``kwargs`` (recorded as ``model.config``)."""
    entry = model_entry(name)
    try:
        model = entry.cls(**kwargs)
    except TypeError as e:
        params = ", ".join(p for p in inspect.signature(entry.cls).parameters if p != "self")
        raise ValueError(f"bad arguments for model {name!r}: {e}; it accepts: {params or 'no arguments'}") from None
    return model
