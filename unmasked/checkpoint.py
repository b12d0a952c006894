"""Self-describing model weights in the safetensors format.

A checkpoint file holds the tensors of a model's ``state_dict`` and, in the safetensors
metadata, the registered model name and its constructor kwargs, so
:func:`load_checkpoint` rebuilds the model without any other information. safetensors
is a plain tensor container: reading one never executes code, unlike ``torch.load`` on a
pickle. A pickle (or a ``torch.save`` zip) given by mistake is refused with a clear message.

Weights may be stored in float16 to keep shipped files small; they are cast back to
float32 on load.
"""

from __future__ import annotations

import inspect
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from unmasked.models.base import Model
from unmasked.registry import create_model, model_entry

#: trained weights that ship inside the package: ``<preset>.safetensors`` + model card ``<preset>.md``
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

FORMAT = "unmasked-checkpoint/1"


class CheckpointError(ValueError):
    """A file that is not a usable unmasked checkpoint."""


def save_checkpoint(
    model: Model,
    path: str | os.PathLike,
    *,
    dtype: torch.dtype | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (any registered model, however it was built) to ``path`` atomically.

    ``dtype`` (e.g. ``torch.float16``) casts floating-point tensors for storage.
    ``metadata`` is any JSON-serialisable dict (training steps, scores, data) kept in the file.
    """
    config = getattr(model, "config", None)
    if not config or not config.get("name"):
        raise CheckpointError(f"{type(model).__name__} is not a registered model (no @register_model name), "
                              "so it cannot be rebuilt from a file")
    tensors = {}
    for key, value in model.state_dict().items():
        t = value.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[key] = t.contiguous().clone()  # clone: safetensors refuses shared storage
    meta = {
        "format": FORMAT,
        "model": config["name"],
        "kwargs": json.dumps(config.get("kwargs", {}), sort_keys=True),
        "metadata": json.dumps(metadata or {}, sort_keys=True),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)  # never leave a half-written checkpoint under the real name
    return path


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint path is a directory: {path}") from None
    # safetensors: an 8-byte little-endian header length, then the JSON header. Test that shape
    # first: the length's low byte may itself be 0x80 or the two bytes "PK" (one file in 256
    # has a header of 128 mod 256 bytes), which alone would look like a pickle or a zip
    if len(head) >= 10 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= 100_000_000:
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path} is a pickle / torch.save file; unmasked only loads safetensors checkpoints, "
            "because unpickling can execute arbitrary code"
        )
    if len(head) < 10:
        raise CheckpointError(f"{path} is too short to be a safetensors checkpoint")
    raise CheckpointError(f"{path} is not a safetensors checkpoint")


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """The model name, kwargs and free-form metadata stored in a checkpoint (tensors not read)."""
    path = Path(path)
    _check_header(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an unmasked checkpoint (no '{FORMAT}' metadata)")
    return {
        "model": meta["model"],
        "kwargs": json.loads(meta.get("kwargs", "{}")),
        "metadata": json.loads(meta.get("metadata", "{}")),
    }


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, floating point ones as float32."""
    path = Path(path)
    _check_header(path)
    out = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            out[key] = t.float() if t.is_floating_point() else t
    return out


def build_model(name: str, **kwargs: Any) -> Model:
    """:func:`~unmasked.registry.create_model`, plus the frozen models it is built on: for each
    ``config kwarg -> parameter`` of the class's ``builds_on``, the model the kwarg names (a shipped
    preset or a ``.safetensors`` path) is loaded, frozen and handed to the constructor."""
    cls = model_entry(name).cls
    extra = {}
    for kwarg, param in cls.builds_on.items():
        spec = kwargs.get(kwarg, inspect.signature(cls).parameters[kwarg].default)
        path = Path(spec) if "/" in str(spec) or str(spec).endswith(".safetensors") else WEIGHTS_DIR / f"{spec}.safetensors"
        if not path.is_file():
            raise ValueError(f"{name}: {kwarg} {spec!r} is neither a shipped preset nor a checkpoint file")
        base = load_checkpoint(path)
        for p in base.parameters():
            p.requires_grad_(False)
        extra[param] = base.eval()
    return create_model(name, **kwargs, **extra)


def load_checkpoint(path: str | os.PathLike, **override_kwargs: Any) -> Model:
    """Rebuild the model stored in ``path`` and load its weights (in eval mode).

    ``override_kwargs`` replace stored constructor kwargs (e.g. a different working size).
    """
    info = read_checkpoint_info(path)
    kwargs = {**info["kwargs"], **override_kwargs}
    model = build_model(info["model"], **kwargs)
    state = load_state(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path} does not fit model {info['model']!r} with kwargs {kwargs}: {e}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path} does not fit model {info['model']!r} with kwargs {kwargs}: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    model.checkpoint_metadata = info["metadata"]
    blend = (info["metadata"] or {}).get("inference", {}).get("classical_blend")
    if blend is not None:
        model.classical_blend = check_classical_blend(blend, source=str(path))
    refine = (info["metadata"] or {}).get("inference", {}).get("exemplar_refine")
    if refine is not None:
        model.exemplar_refine = check_exemplar_refine(refine, source=str(path))
    return model.eval()


def interpolate_checkpoints(base: str | os.PathLike, tuned: str | os.PathLike, alpha: float) -> Model:
    """The model whose weights are ``(1 - alpha) * base + alpha * tuned``, in eval mode.

    Weight-space ensembling of a fine-tuned model with the model it was fine-tuned from (WiSE-FT:
    Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022): the two must hold the
    same model with the same tensors; the result is built with ``base``'s kwargs (a training-only
    kwarg such as ``freeze_encoder_bn`` may differ). Floating-point tensors (BatchNorm's running
    statistics included, as in "model soups", Wortsman et al., ICML 2022) are interpolated; integer
    ones (``num_batches_tracked``) are taken from the nearer end. The result keeps ``base``'s
    inference metadata (its edge blend).
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    info_a, info_b = read_checkpoint_info(base), read_checkpoint_info(tuned)
    if info_a["model"] != info_b["model"]:
        raise CheckpointError(f"{tuned} holds a {info_b['model']} and {base} a {info_a['model']}, "
                              "so they cannot be interpolated")
    model = load_checkpoint(base)
    state_a, state_b = model.state_dict(), load_state(tuned)  # base's tensors, as loaded (float32)
    if state_a.keys() != state_b.keys() or any(state_a[k].shape != state_b[k].shape for k in state_a):
        raise CheckpointError(f"{base} and {tuned} hold different tensors, so they cannot be interpolated")
    nearer = state_b if alpha >= 0.5 else state_a
    mixed = {k: torch.lerp(a, state_b[k], float(alpha)) if a.is_floating_point() else nearer[k]
             for k, a in state_a.items()}
    model.load_state_dict(mixed)
    return model.eval()


#: the diffusion fills a ``classical_blend`` may name (OpenCV's, :data:`unmasked.pipelines.fill.CLASSICAL_FLAGS`)
CLASSICAL_BLEND_METHODS = ("navier_stokes", "telea")


def check_classical_blend(spec: dict, source: str = "checkpoint") -> dict:
    """Validate a ``classical_blend`` spec ``{"method": ..., "width": px > 0}``; returns a clean copy.

    An optional ``"sketch_width"`` (px > 0) is the width used instead when the call carries a
    sketch with lines in the hole: a sketch model's lines near the hole's edge must survive the
    diffusion ring, which knows nothing of them.
    """
    method, width = spec.get("method"), spec.get("width")
    sketch_width = spec.get("sketch_width", 1.0)
    if (method not in CLASSICAL_BLEND_METHODS or not isinstance(width, (int, float)) or width <= 0
            or not isinstance(sketch_width, (int, float)) or sketch_width <= 0):
        raise ValueError(f"{source}: classical_blend must be {{'method': one of {sorted(CLASSICAL_BLEND_METHODS)}, "
                         f"'width': a positive number of pixels[, 'sketch_width': the same]}}, got {spec!r}")
    clean = {"method": method, "width": float(width)}
    if "sketch_width" in spec:
        clean["sketch_width"] = float(sketch_width)
    return clean


def check_exemplar_refine(spec: dict, source: str = "checkpoint") -> dict:
    """Validate an ``exemplar_refine`` spec ``{"patch_size": odd >= 3, "max_side": px >= 64,
    "min_size": px >= 16}`` (see :func:`unmasked.pipelines.fill.refine_with_exemplars`); returns a
    clean copy with every key."""
    clean = {"patch_size": 7, "max_side": 768, "min_size": 64}
    unknown = sorted(set(spec) - set(clean))
    clean.update({k: v for k, v in spec.items() if k in clean})
    ok = (not unknown and all(isinstance(v, int) for v in clean.values()) and clean["patch_size"] >= 3
          and clean["patch_size"] % 2 == 1 and clean["max_side"] >= 64 and clean["min_size"] >= 16)
    if not ok:
        raise ValueError(f"{source}: exemplar_refine takes 'patch_size' (odd >= 3), 'max_side' (>= 64) and "
                         f"'min_size' (>= 16), integers, got {spec!r}")
    return clean
