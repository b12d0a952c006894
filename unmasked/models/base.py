"""The interfaces every model follows: one base per task, constructor kwargs kept from the start.

:class:`Model` is the base of everything the registry holds (networks and classical baselines).
Its constructor keyword arguments are its configuration: they are recorded on the instance as
``model.config = {"name": <registry name>, "kwargs": {...}}`` when it is built, however it is
built (``create_model`` or the class itself), so any model can be saved by
:func:`unmasked.checkpoint.save_checkpoint` and rebuilt from the file. A parameter listed in
``runtime_args`` (a model object handed in, say) is not configuration and is not recorded.

One base per task, each with its own ``forward``:

* :class:`InpaintModel` (task "inpaint"): ``forward(image, mask[, reference])`` takes ``image``
  (N, 3, H, W) in [-1, 1] and ``mask`` (N, 1, H, W) with 1 = hole, and returns an
  :class:`InpaintOutput` (coarse-to-fine models: a :class:`DeepFillOutput` with the first
  stage's ``coarse`` too). Models never composite (``conventions.composite`` does that once)
  and never see files, HTTP or uint8.
* :class:`SegmentModel` (task "segment", e.g. the worn-mask segmenter): ``forward(image)`` ->
  logits (N, 1, H, W).
* :class:`EmbedModel` (task "embed", e.g. the identity embedder): ``forward(images, landmarks)``
  -> unit embeddings (N, D).

Class attributes tell the pipelines how to drive a model:

* ``multiple``: H and W must be a multiple of this (the pipeline pads).
* ``working_size``: the resolution the model was trained at; larger inputs are filled
  crop-by-crop around each hole at this size. ``None`` = any size (classical baselines).
* ``uses_reference`` (inpainting): the model accepts a ``reference`` image of the same person.
* ``uses_sketch`` (inpainting): the model accepts a ``sketch`` (N, 1, H, W), 1 = line (DeepFill
  v2's user-guided mode); set per instance, since it is a constructor switch.
* ``uses_landmarks`` (inpainting): the model needs a ``guide`` (N, 1, H, W), the drawing of the
  face's 68 landmarks (:func:`unmasked.data.landmark_guide.draw_landmark_guide`); per instance.
* ``trainable``: False for classical (non-learned) baselines.
* ``task``: which of the three; only inpainting models are offered to fill pipelines.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn


@dataclass
class InpaintOutput:
    """What an inpainting model returns: ``image`` (N, 3, H, W) in [-1, 1], not composited."""

    image: torch.Tensor

    @property
    def stages(self) -> dict[str, torch.Tensor]:
        """The intermediate results a paper defines (every field but ``image``), by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "image"}


@dataclass
class DeepFillOutput(InpaintOutput):
    """A coarse-to-fine model's output (DeepFill v2, Yu et al. ICCV 2019, Fig. 3): the refined
    ``image`` and the first stage's ``coarse`` result, both (N, 3, H, W) in [-1, 1], not composited."""

    coarse: torch.Tensor


class Model(nn.Module):
    """Base of every registered model: task, pipeline attributes and the recorded config."""

    multiple: ClassVar[int] = 1
    working_size: int | None = None
    trainable: ClassVar[bool] = True
    task: ClassVar[str] = ""
    #: the registry name, set by :func:`unmasked.registry.register_model`
    registry_name: ClassVar[str | None] = None
    #: constructor parameters that are not configuration (not recorded in ``config``)
    runtime_args: ClassVar[tuple[str, ...]] = ()
    #: {config kwarg naming another model: the constructor parameter that takes it loaded}: a model
    #: built on a frozen one (the face refiner's coarse model); :func:`unmasked.checkpoint.build_model`
    #: loads it, so a model never loads weights itself
    builds_on: ClassVar[dict[str, str]] = {}

    #: {"name": registry name, "kwargs": the constructor's keyword arguments}, recorded at construction
    config: dict

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw) -> None:
            if "config" not in self.__dict__:  # the outermost constructor records; super().__init__ calls do not
                recorded = {}
                for name, value in list(signature.bind(self, *args, **kw).arguments.items())[1:]:  # not self
                    kind = signature.parameters[name].kind
                    if kind is inspect.Parameter.VAR_KEYWORD:
                        recorded.update(value)
                    elif kind is inspect.Parameter.VAR_POSITIONAL:
                        if value:
                            raise TypeError(f"{cls.__name__}: positional *{name} cannot be recorded as configuration")
                    else:
                        recorded[name] = value
                recorded = {k: v for k, v in recorded.items() if k not in type(self).runtime_args}
                self.__dict__["config"] = {"name": type(self).registry_name, "kwargs": recorded}
            init(self, *args, **kw)

        cls.__init__ = recording_init


class InpaintModel(Model):
    """Base of inpainting models and baselines (see module docstring)."""

    task: ClassVar[str] = "inpaint"
    uses_reference: ClassVar[bool] = False
    uses_sketch: bool = False
    uses_landmarks: bool = False

    #: ``{"method": "navier_stokes" | "telea", "width": px}`` or None: blend the model's fill with
    #: a classical (diffusion) fill near the hole boundary, see
    #: :func:`unmasked.pipelines.fill.blend_with_classical`. Loaded from a checkpoint's
    #: ``metadata["inference"]["classical_blend"]``, so the weights' model card and the
    #: fill that ``unmasked eval`` scores are one and the same.
    classical_blend: dict | None = None
    #: ``{"patch_size", "max_side", "min_size"}`` or None: the model's fill is a guide that
    #: PatchMatch refines with the photo's own patches, at the photo's resolution (see
    #: :func:`unmasked.pipelines.fill.refine_with_exemplars`). Loaded from a checkpoint's
    #: ``metadata["inference"]["exemplar_refine"]``, like ``classical_blend``.
    exemplar_refine: dict | None = None

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> InpaintOutput:
        raise NotImplementedError

    def load_stage_state(self, state: dict[str, torch.Tensor], source_kwargs: dict) -> None:
        """Load the weights of a previous training stage (``init_from``), saved by this
        architecture built with ``source_kwargs``. A model whose kwargs may grow parameters
        between stages (DeepFill v2's sketch channel) adapts ``state`` here; by default the
        shapes must match exactly."""
        self.load_state_dict(state, strict=True)


class SegmentModel(Model):
    """Base of segmentation models: ``forward(image)`` with ``image`` (N, 3, H, W) in [-1, 1] ->
    logits (N, 1, H, W)."""

    task: ClassVar[str] = "segment"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class EmbedModel(Model):
    """Base of embedding models: ``forward(images, landmarks=None)`` with ``images`` (N, 3, S, S)
    in [-1, 1] and optional (N, 68, 2) landmarks -> unit embeddings (N, D)."""

    task: ClassVar[str] = "embed"

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError
