"""The interface every inpainting model and baseline follows.

A model is an ``nn.Module`` whose ``forward(image, mask[, reference])`` takes
``image`` (N, 3, H, W) in [-1, 1] and ``mask`` (N, 1, H, W) with 1 = hole, and returns an
:class:`InpaintOutput`. Models never composite (``conventions.composite`` does that once)
and never see files, HTTP or uint8.

Class attributes tell the pipelines how to drive a model:

* ``multiple``: H and W must be a multiple of this (the pipeline pads).
* ``working_size``: the resolution the model was trained at; larger inputs are filled
  crop-by-crop around each hole at this size. ``None`` = any size (classical baselines).
* ``uses_reference``: the model accepts a ``reference`` image of the same person.
* ``uses_sketch``: the model accepts a ``sketch`` (N, 1, H, W), 1 = line (DeepFill v2's
  user-guided mode); set per instance, since it is a constructor switch.
* ``trainable``: False for classical (non-learned) baselines.
* ``task``: "inpaint" (``forward(image, mask[, reference])``, the default) or "segment" (a
  helper network such as the worn-mask segmenter, ``forward(image) -> logits``); only inpainting
  models are offered to fill pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn


@dataclass
class InpaintOutput:
    """What a model returns: ``image`` (N, 3, H, W) in [-1, 1], not composited.

    ``extras`` holds intermediate results a paper defines (e.g. DeepFill's ``coarse``).
    """

    image: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getattr__(self, name: str) -> torch.Tensor:
        # dataclass fields are found before __getattr__ is consulted; this only serves extras
        extras = self.__dict__.get("extras", {})
        if name in extras:
            return extras[name]
        raise AttributeError(name)


class InpaintModel(nn.Module):
    """Base class: declares how pipelines should call a model (see module docstring)."""

    multiple: ClassVar[int] = 1
    working_size: int | None = None
    uses_reference: ClassVar[bool] = False
    uses_sketch: bool = False
    trainable: ClassVar[bool] = True
    task: ClassVar[str] = "inpaint"

    #: set by :func:`unmasked.registry.create_model`: {"name": ..., "kwargs": {...}}
    config: dict

    #: ``{"method": "navier_stokes" | "telea", "width": px}`` or None: blend the model's fill with
    #: a classical (diffusion) fill near the hole boundary, see
    #: :func:`unmasked.pipelines.fill.blend_with_classical`. Loaded from a checkpoint's
    #: ``metadata["inference"]["classical_blend"]``, so the weights' model card and the
    #: fill that ``unmasked eval`` scores are one and the same.
    classical_blend: dict | None = None

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> InpaintOutput:
        raise NotImplementedError

    def load_stage_state(self, state: dict[str, torch.Tensor], source_kwargs: dict) -> None:
        """Load the weights of a previous training stage (``init_from``), saved by this
        architecture built with ``source_kwargs``. A model whose kwargs may grow parameters
        between stages (DeepFill v2's sketch channel) adapts ``state`` here; by default the
        shapes must match exactly."""
        self.load_state_dict(state, strict=True)
