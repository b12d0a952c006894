"""unmasked: deep image inpainting.

Fill holes in photos, remove worn face masks, and restore a face with the help of a
second photo of the same person. Images inside the library are float32 NCHW RGB tensors
in [-1, 1]; masks are N x 1 x H x W with 1 = hole (see :mod:`unmasked.conventions`).
"""

import importlib
from typing import TYPE_CHECKING

from unmasked.version import __version__

if TYPE_CHECKING:
    from unmasked.api import Inpainter, load_model, unmask
    from unmasked.checkpoint import load_checkpoint, save_checkpoint
    from unmasked.models.base import DeepFillOutput, EmbedModel, InpaintModel, InpaintOutput, SegmentModel
    from unmasked.registry import create_model, list_models, register_model

#: public name -> the module that defines it; imported on first use (PEP 562), so that
#: ``import unmasked.cli`` and ``unmasked --help`` do not load torch
_LAZY = {
    "Inpainter": "unmasked.api", "load_model": "unmasked.api", "unmask": "unmasked.api",
    "load_checkpoint": "unmasked.checkpoint", "save_checkpoint": "unmasked.checkpoint",
    "InpaintModel": "unmasked.models.base", "InpaintOutput": "unmasked.models.base",
    "DeepFillOutput": "unmasked.models.base", "SegmentModel": "unmasked.models.base", "EmbedModel": "unmasked.models.base",
    "create_model": "unmasked.registry", "list_models": "unmasked.registry", "register_model": "unmasked.registry",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unmasked' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Inpainter",
    "load_model",
    "InpaintModel",
    "InpaintOutput",
    "DeepFillOutput",
    "SegmentModel",
    "EmbedModel",
    "create_model",
    "list_models",
    "load_checkpoint",
    "register_model",
    "save_checkpoint",
    "unmask",
]
