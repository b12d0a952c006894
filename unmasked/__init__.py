"""unmasked: deep image inpainting.

Fill holes in photos, remove worn face masks, and restore a face with the help of a
second photo of the same person. Images inside the library are float32 NCHW RGB tensors
in [-1, 1]; masks are N x 1 x H x W with 1 = hole (see :mod:`unmasked.conventions`).
"""

from unmasked.api import Inpainter, load_model, unmask
from unmasked.checkpoint import load_checkpoint, save_checkpoint
from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.registry import create_model, list_models, register_model
from unmasked.version import __version__

__all__ = [
    "__version__",
    "Inpainter",
    "load_model",
    "InpaintModel",
    "InpaintOutput",
    "create_model",
    "list_models",
    "load_checkpoint",
    "register_model",
    "save_checkpoint",
    "unmask",
]
