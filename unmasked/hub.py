"""The model hub: the one place that turns a name or a path into a loaded model.

Below the pipelines (they take model objects or ask the hub; they never read weights
themselves) and above :mod:`unmasked.registry` and :mod:`unmasked.checkpoint`:

* **shipped presets**: ``unmasked/weights/<preset>.safetensors``, each with a model card
  ``<preset>.md``, and their short aliases (:data:`PRESET_ALIASES`);
* **registered names**: classical baselines (``telea``) build directly; a learned
  architecture named without weights is refused with the presets that exist;
* **checkpoint paths** (``*.safetensors``): self-describing, so the file says what to build
  (:func:`unmasked.checkpoint.load_checkpoint`, which also reads the inference settings such
  as ``classical_blend`` from its metadata);
* **the defaults**, each named once: the face model of ``unmask`` and ``auto``, the scene
  filler of ``auto``, the sketch model of ``fill --sketch`` and the worn-mask segmenter.

``auto`` is not a stored model but a pipeline over two of them
(:class:`unmasked.pipelines.auto.FaceAwareFill`); :func:`unmasked.api.load_model` builds it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from unmasked.checkpoint import WEIGHTS_DIR, CheckpointError, build_model, load_checkpoint, read_checkpoint_info
from unmasked.models.base import Model, SegmentModel
from unmasked.models.face_identity import FaceEmbedder, load_mobilefacenet
from unmasked.registry import UnknownModelError, list_models, model_entry

CHECKPOINT_SUFFIXES = (".safetensors",)

#: short names for shipped presets (the names the issues and README use)
PRESET_ALIASES = {"deepfill_v2-faces": "deepfill_v2_faces128", "deepfill_v2-sketch": "deepfill_v2_sketch_faces128"}
#: the face model of `fill` (`auto` on faces, the web page's face square): the best-scoring face preset
#: on held-out worn-mask holes that needs no landmarks (README, "Remove face masks": 27.35 dB against
#: 25.83 for deepfill_v2_faces128)
DEFAULT_FACE_PRESET = "pconv_unet_faces128"
#: the face model of `unmask` (CLI, Python, /unmask): the landmark-guided face model, which `unmask` gives
#: FaceMesh's guess of the hidden mouth and jaw, fine-tuned on the holes `unmask` finds on real photos;
#: through `unmask` it scores as DEFAULT_FACE_PRESET does and paints fewer banded or doubled mouths on
#: real photos (README, "How real the restored face looks at 256²")
DEFAULT_UNMASK_PRESET = "pconv_unet_faces128_landmarks"
#: what `auto` fills outside faces with (README, "Which model fills by default" and "Remove an object"):
#: Telea's low band corrected by the learned 64 px layout (scene_layout64), PatchMatch's texture. On
#: held-out scenes its PSNR is above Telea's in every hole-ratio bucket, with the NVIDIA holes (+0.30 dB)
#: and with solid object holes (+0.25 dB), and its realism is the best of the fillers measured
DEFAULT_SCENE_MODEL = "layout_patchmatch"
#: the model `fill` uses when a sketch is given without a model: DeepFill v2's user-guided mode
DEFAULT_SKETCH_MODEL = "deepfill_v2-sketch"
#: the model `fill` and `unmask` use when a reference photo or a gallery is given without a model
DEFAULT_REFERENCE_MODEL = "two_face_faces128"
#: the worn-mask segmenter of `unmask` (a shipped preset of task "segment")
DEFAULT_SEGMENTER = "mask_segmenter"
#: the face-identity embedder of reference retrieval and the identity loss (a preset of task "embed")
DEFAULT_EMBEDDER = "face_identity"


def shipped_weights() -> dict[str, Path]:
    """Preset name -> weights file, for the trained models that ship with unmasked."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def resolve_alias(name: str) -> str:
    """The preset an alias stands for (``deepfill_v2-faces`` -> ``deepfill_v2_faces128``), else ``name``."""
    return PRESET_ALIASES.get(name, name)


def load_model(spec: str | os.PathLike | Model) -> Model:
    """A model (in eval mode) from a shipped preset or its alias, a registered baseline name
    (``"telea"``) or a checkpoint path (``*.safetensors``); a model object is returned as is.

    A learned architecture named without weights raises ``ValueError`` naming the presets; an
    unknown name raises :class:`~unmasked.registry.UnknownModelError` listing what exists.
    """
    if isinstance(spec, Model):
        return spec.eval()
    text = resolve_alias(os.fspath(spec))
    presets = shipped_weights()
    if text in presets:
        return load_checkpoint(presets[text])
    if text.endswith(CHECKPOINT_SUFFIXES) or os.sep in text or Path(text).is_file():
        return load_checkpoint(text)
    if text in PRESET_ALIASES.values():
        raise UnknownModelError(f"preset {text!r} does not ship with this version of unmasked (no trained weights "
                                f"yet); trained presets: {', '.join(presets)}, or pass a checkpoint file (.safetensors)")
    try:
        entry = model_entry(text)
    except UnknownModelError as e:
        if presets:
            raise UnknownModelError(f"{e}; trained presets: {', '.join(presets)}") from None
        raise
    if entry.trainable:
        hint = f"use a trained preset ({', '.join(presets)}) or" if presets else "no trained weights ship for it yet;"
        raise ValueError(f"model {text!r} is an untrained architecture: {hint} pass a checkpoint file (.safetensors)")
    return build_model(text).eval()


@functools.lru_cache(maxsize=4)
def _load_segmenter(spec: str) -> SegmentModel:
    model = load_model(spec)
    if not isinstance(model, SegmentModel):
        raise ValueError(f"{spec!r} is not a mask segmenter (task {model.task!r})")
    return model


def load_segmenter(spec: str | os.PathLike | SegmentModel = DEFAULT_SEGMENTER) -> SegmentModel:
    """The worn-mask segmenter of ``unmask``: a preset name, a .safetensors path or a model (cached by name)."""
    if isinstance(spec, SegmentModel):
        return spec.eval()
    return _load_segmenter(os.fspath(spec))


def load_identity_network(path: str | os.PathLike):
    """A frozen identity embedder for training losses: a MobileFaceNet ``.ckpt`` (research weights,
    :func:`unmasked.models.face_identity.load_mobilefacenet`) or an embedder ``.safetensors``."""
    path = Path(path)
    return load_mobilefacenet(path) if path.suffix == ".ckpt" else load_embedder(path)


def load_embedder(spec: str | os.PathLike = DEFAULT_EMBEDDER) -> FaceEmbedder:
    """The shipped embedder (``"face_identity"``) or a saved one by path, frozen and in eval mode.

    The checkpoint's ``metadata`` (training data, ROC-AUC, suggested ``threshold``) is kept on
    ``embedder.checkpoint_metadata``.
    """
    path = shipped_weights().get(os.fspath(spec), Path(spec))
    emb = load_checkpoint(path)
    if not isinstance(emb, FaceEmbedder):
        raise CheckpointError(f"{path} holds {type(emb).__name__}, not an identity embedder (face_embedder)")
    emb.name = Path(path).stem
    return emb.freeze()


@dataclass(frozen=True)
class CatalogueEntry:
    """One model a user can name: what ``unmasked models``, ``GET /api/v1/models`` and the web page list.

    ``kind``: "trained" (weights: a shipped preset or a named checkpoint), "classical" (a
    baseline), "architecture" (a learned model without weights; needs a checkpoint) or "auto"
    (the pipeline of :func:`unmasked.api.load_model`). ``task``: "inpaint", or "segment" /
    "embed" for the helper networks that pipelines use and ``--model`` refuses.
    """

    name: str
    kind: str
    task: str
    description: str
    uses_reference: bool = False
    uses_sketch: bool = False
    #: draws the face's landmarks as a guide (``pconv_unet`` with ``landmark_guide``): ``unmask`` only
    uses_landmarks: bool = False
    working_size: int | None = None
    face_model: bool = False
    path: Path | None = None  # the weights, for "trained"
    architecture: str = ""  # the registered model the weights rebuild, for "trained"
    kwargs: dict | None = None  # its constructor kwargs, for "trained"


def _is_face_model(name: str, metadata: dict) -> bool:
    return "face" in name.lower() or "face" in str(metadata.get("data", "")).lower()


def catalogue(checkpoints: dict[str, str | os.PathLike] | None = None) -> list[CatalogueEntry]:
    """Every model by name: the shipped presets (plus ``checkpoints``, name -> path), the registered
    architectures and baselines, and ``auto``; in that order. Reads only the weights' headers."""
    entries = []
    for name, path in {**shipped_weights(), **{k: Path(v) for k, v in (checkpoints or {}).items()}}.items():
        info = read_checkpoint_info(path)
        entry = model_entry(info["model"])
        meta = info["metadata"] or {}
        entries.append(CatalogueEntry(
            name=name, kind="trained", task=entry.task, uses_reference=entry.uses_reference,
            uses_sketch=bool(info["kwargs"].get("sketch", False)),
            uses_landmarks=bool(info["kwargs"].get("landmark_guide", False)),
            description=f"{entry.description} (trained on {meta.get('data', 'unknown data')})",
            working_size=info["kwargs"].get("working_size"), face_model=_is_face_model(name, meta),
            path=Path(path), architecture=info["model"], kwargs=info["kwargs"]))
    for name in list_models():
        entry = model_entry(name)
        entries.append(CatalogueEntry(name=name, kind="architecture" if entry.trainable else "classical",
                                      task=entry.task, description=entry.description,
                                      uses_reference=entry.uses_reference))
    entries.append(CatalogueEntry(
        name="auto", kind="auto", task="inpaint",
        description=f"{DEFAULT_FACE_PRESET} inside detected faces, {DEFAULT_SCENE_MODEL} elsewhere"))
    return entries
