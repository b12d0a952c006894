"""The LightningModule that trains any registered inpainting model, with or without a GAN.

One module serves both papers:

* ``loss: pconv``: the Partial Convolutions loss (Liu et al., ECCV 2018), no discriminator;
* ``loss: deepfill``: L1 on the coarse and refined outputs (+ perceptual when VGG weights
  are given: ``loss_weights.perceptual`` on the composited output, ``perceptual_output`` on
  the raw output, defaulting to the same weight; 0 skips that VGG pass) and, with ``discriminator:`` set, the SN-PatchGAN hinge loss (Yu et al., ICCV
  2019). The discriminator sees composited outputs and the mask, and steps once every
  ``d_every`` batches (the Unmasked report used 5).

GAN training uses manual optimisation (as in Lightning's GAN examples). The number of
batches trained is the module's own counter ``steps_done`` (saved in checkpoints), because
Lightning's ``global_step`` counts optimiser steps, which differ between G and D.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from unmasked.checkpoint import build_model, load_state, read_checkpoint_info
from unmasked.conventions import composite, tensor_to_image
from unmasked.data.landmark_guide import draw_guide
from unmasked.hub import load_identity_network
from unmasked.losses import PConvLoss, VGG19Relu31, hinge_d_loss, hinge_g_loss
from unmasked.losses.bands import band_loss
from unmasked.losses.identity import identity_loss
from unmasked.losses.pconv import perceptual_loss
from unmasked.metrics import score_image
from unmasked.models.base import DeepFillOutput
from unmasked.models.deepfill_v2 import SNPatchGAN
from unmasked.training.config import TrainConfig
from unmasked.training.data import (
    StepBatchSampler,
    StepSamples,
    build_mask_banks,
    build_split,
    closed_mouths,
    reference_groups,
    split_landmarks,
    validation_masks,
    validation_sketches,
)

CL = torch.channels_last
DISCRIMINATOR_FORMAT = "unmasked-discriminator/1"
#: model kwargs that a new stage (``init_from``) may change: they select behaviour, not parameters
#: (``working_size``: a fully convolutional model fine-tuned at another resolution; a model whose
#: parameters depend on it fails to load them with a shape error)
STAGE_SWITCHES = frozenset({"freeze_encoder_bn", "attention", "upsample_mode", "sketch_gain", "working_size", "guide_kind",
                            "guide_blur"})
#: model kwargs that a new stage may switch on: the model's ``load_stage_state`` adds their parameters
STAGE_GROWTHS = frozenset({"sketch", "sketch_refine", "detail", "landmark_guide"})
#: model kwargs that a new stage may switch off: the model's ``load_stage_state`` drops their
#: parameters (two_face's 1/4-resolution fusion, replaced by its detail head)
STAGE_DROPS = frozenset({"fusion"})


def save_discriminator(discriminator: torch.nn.Module, kwargs: dict, path) -> None:
    """The discriminator's tensors + its constructor kwargs, as safetensors (to continue GAN training)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in discriminator.state_dict().items()}
    save_file(tensors, str(tmp), metadata={"format": DISCRIMINATOR_FORMAT, "kwargs": json.dumps(kwargs, sort_keys=True)})
    os.replace(tmp, path)


def load_discriminator(path, kwargs: dict) -> dict[str, torch.Tensor]:
    """Tensors saved by :func:`save_discriminator`; its kwargs must equal ``kwargs``."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != DISCRIMINATOR_FORMAT:
            raise ValueError(f"{path} is not an unmasked discriminator file")
        if json.loads(meta["kwargs"]) != kwargs:
            raise ValueError(f"{path} holds a discriminator with {meta['kwargs']}, the config asks for {kwargs}")
        return {k: f.get_tensor(k) for k in f.keys()}


#: half-width (px) of the band around sketch lines that ``loss_weights.sketch_l1`` weighs: a rough
#: sketch is jittered by up to about 2 px (:func:`unmasked.data.sketch.training_sketch`)
SKETCH_BAND = 2


def sketch_band_l1(preds: list[torch.Tensor | None], image: torch.Tensor, sketch: torch.Tensor,
                   band: int = SKETCH_BAND) -> torch.Tensor:
    """Mean L1 of each prediction over the pixels within ``band`` px of a sketch line (in the hole),
    summed over the predictions (refined and coarse); 0 for a batch without lines.

    DeepFill v2's user-guided model learns to follow the sketch from its reconstruction loss
    alone; those pixels are a few percent of an image, so the loss over the whole image hardly
    sees whether an edge was drawn where the sketch says. This term weighs them on their own.
    """
    near = F.max_pool2d(sketch.float(), 2 * band + 1, stride=1, padding=band)
    count = near.sum() * image.shape[1]
    total = image.new_zeros(())
    if count == 0:
        return total
    for pred in preds:
        if pred is not None:
            total = total + ((pred - image).abs() * near).sum() / count
    return total


#: how far :func:`mismatched_guide` moves the other photo's drawing, in pixels of a 128 px image
MISMATCH_SHIFT = 6


def mismatched_guide(guide: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A guide that disagrees with each photo where it matters, for the matching-aware discriminator
    (``d_mismatch``): photo i keeps its own drawing outside its hole (its visible eyes and brows
    would give the game away), and inside the hole gets photo i + 1's drawing moved down (even i)
    or up (odd i) by :data:`MISMATCH_SHIFT` px per 128 px, so its mouth and jaw lie elsewhere and
    may have another shape. Deterministic, so a resumed run stays exact."""
    shift = max(1, round(MISMATCH_SHIFT * guide.shape[-2] / 128))
    other = guide.roll(-1, dims=0)
    down, up = other.roll(shift, dims=-2), other.roll(-shift, dims=-2)
    even = (torch.arange(guide.shape[0], device=guide.device) % 2 == 0).view(-1, 1, 1, 1)
    moved = torch.where(even, down, up)
    hole = mask.to(guide.dtype)
    return guide * (1 - hole) + moved * hole


class InpaintingModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.automatic_optimization = False
        self.generator = build_model(cfg.model, **cfg.model_kwargs).to(memory_format=CL)
        self.discriminator = None if cfg.discriminator is None else SNPatchGAN(**cfg.discriminator).to(memory_format=CL)
        features = VGG19Relu31.from_file(cfg.feature_weights) if cfg.feature_weights else None
        #: a frozen face-identity network (``identity_network``): the self-identity term ``1 - cos``
        #: between the embeddings of the composited fill and of the photo, weight ``loss_weights.identity``
        self.identity_network = load_identity_network(cfg.identity_network) if cfg.identity_network else None
        self.identity_weight = float(cfg.loss_weights.get("identity", 0.1))
        if cfg.loss == "pconv":
            self.pconv_loss = PConvLoss(features=features, **{k: v for k, v in cfg.loss_weights.items() if k != "identity"})
        else:
            self.features = features
            # l2 / l2_coarse (mean squared error, off by default): for tasks where the L1 optimum,
            # the per-pixel median, is a blank fill (e.g. the MNIST experiments' large boxes)
            self.weights = {"l1": 1.0, "l1_coarse": 1.0, "sketch_l1": 0.0, "l2": 0.0, "l2_coarse": 0.0, "perceptual": 0.05,
                            **cfg.loss_weights}
            self.weights.setdefault("perceptual_output", self.weights["perceptual"])
        self.steps_done = 0
        self.last_val: dict[str, float] = {}
        self._init_weights(cfg.init_from)
        if cfg.train_only:
            names = [n for n, _ in self.generator.named_parameters()]
            if not any(n.startswith(tuple(cfg.train_only)) for n in names):
                raise ValueError(f"train_only {cfg.train_only} matches no parameter of {cfg.model} "
                                 f"(names start with e.g. {sorted({n.split('.')[0] for n in names})})")
            for n, p in self.generator.named_parameters():
                p.requires_grad_(n.startswith(tuple(cfg.train_only)))
        #: the moving average of the generator's weights (``ema_decay``), from the weights it starts with
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if cfg.ema_decay else None

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the averaged generator ``1 - ema_decay`` of the way to the trained one: every float
        tensor of its state (parameters and BatchNorm statistics); integer ones (BatchNorm's batch
        counts) are copied."""
        averaged = self.generator_ema.state_dict()
        for name, value in self.generator.state_dict().items():
            if value.dtype.is_floating_point:
                averaged[name].lerp_(value, 1.0 - self.cfg.ema_decay)
            else:
                averaged[name].copy_(value)

    def generator_parameters(self) -> list[torch.nn.Parameter]:
        """The generator parameters the optimiser trains (all, or those of ``train_only``)."""
        return [p for p in self.generator.parameters() if p.requires_grad]

    def _init_weights(self, init_from: dict[str, str]) -> None:
        """Load trained weights for a new stage (fresh optimiser); shapes must match exactly."""
        if "generator" in init_from:
            info = read_checkpoint_info(init_from["generator"])
            # switches that change no parameter may differ between stages (PConv's fine-tuning
            # phase freezes the encoder's BatchNorm; a stage may drop contextual attention), and
            # a stage may add an input or a head (DeepFill v2's sketch channel, two_face's detail
            # head, zero-initialised) or drop a part (two_face's fusion)
            free = STAGE_SWITCHES | STAGE_GROWTHS | STAGE_DROPS
            same = {k: v for k, v in info["kwargs"].items() if k not in free}
            want = {k: v for k, v in self.cfg.model_kwargs.items() if k not in free}
            shrinks = [k for k in STAGE_GROWTHS if info["kwargs"].get(k) and not self.cfg.model_kwargs.get(k)]
            shrinks += [k for k in STAGE_DROPS if not info["kwargs"].get(k, True) and self.cfg.model_kwargs.get(k, True)]
            if info["model"] != self.cfg.model or same != want or shrinks:
                raise ValueError(f"{init_from['generator']} holds {info['model']} {info['kwargs']}, "
                                 f"the config asks for {self.cfg.model} {self.cfg.model_kwargs}")
            self.generator.load_stage_state(load_state(init_from["generator"]), info["kwargs"])
        if "discriminator" in init_from:
            if self.discriminator is None:
                raise ValueError("init_from.discriminator given, but the config has no discriminator")
            self.discriminator.load_state_dict(load_discriminator(init_from["discriminator"], self.cfg.discriminator),
                                               strict=True)

    def describe_loss(self) -> str:
        """What is being optimised, for the log: says clearly when feature terms are off."""
        pre = f"; D alone for the first {self.cfg.d_pretrain} steps" if self.cfg.d_pretrain else ""
        gan = (f" + {self.cfg.gan_weight:g}*hinge GAN (SN-PatchGAN, D every {self.cfg.d_every} batches{pre})"
               if self.discriminator is not None else "")
        ident = (f" + {self.identity_weight:g}*identity(1-cos to the photo, {Path(self.cfg.identity_network).name})"
                 if self.identity_network is not None and type(self) is InpaintingModule else "")
        bands = (f" + {self.cfg.band_weight:g}*bands(horizontal edges beyond the photo's, unmasked.losses.bands)"
                 if self.cfg.band_weight else "")
        if self.cfg.loss == "pconv":
            return self.pconv_loss.describe() + ident + bands + gan
        w = self.weights
        feat = (f" + {w['perceptual']:g}*perceptual(composite) + {w['perceptual_output']:g}*perceptual(output)"
                f" (VGG-19 from {self.cfg.feature_weights})" if self.features is not None
                else "; perceptual term OFF (no feature_weights given)")
        sketch = (f" + {w['sketch_l1']:g}*L1(refined + coarse, within {SKETCH_BAND} px of the sketch)"
                  if w.get("sketch_l1") else "")
        return (f"DeepFill loss: {w['l1']:g}*L1(refined) + {w['l1_coarse']:g}*L1(coarse){sketch}{self.describe_l2()}"
                f"{feat}{ident}{bands}{gan}")

    def describe_l2(self) -> str:
        """" + w*L2(refined) + w*L2(coarse)" for the squared-error terms that are on ("" if none)."""
        w = self.weights
        return "".join(f" + {w[k]:g}*L2({part})" for k, part in (("l2", "refined"), ("l2_coarse", "coarse")) if w[k])

    # ------------------------------------------------------------------ data

    def setup(self, stage: str) -> None:
        if hasattr(self, "train_samples"):
            return
        cfg = self.cfg
        banks, weights = build_mask_banks(cfg)
        uses_reference = getattr(self.generator, "uses_reference", False)
        images, labels = build_split(cfg, "train")
        uses_sketch = getattr(self.generator, "uses_sketch", False)
        uses_landmarks = getattr(self.generator, "uses_landmarks", False)
        if cfg.data.max_mouth_open is not None and not uses_landmarks:
            raise ValueError("data.max_mouth_open needs a landmark-guided model (it reads the faces' landmarks)")
        landmarks = split_landmarks(cfg, "train") if uses_landmarks else None
        keep = closed_mouths(cfg, "train")
        if keep is not None:
            if not keep.any():
                raise ValueError(f"data.max_mouth_open {cfg.data.max_mouth_open} keeps no training face")
            images, labels, landmarks = images[torch.from_numpy(keep)], labels[keep], landmarks[keep]
        self.train_samples = StepSamples(images, banks, weights, cfg.seed, cfg.data.flip, self.global_rank,
                                         labels=labels if uses_reference else None, sketch=uses_sketch,
                                         landmarks=landmarks, jitter_lower=cfg.data.landmark_jitter_lower,
                                         guide_kind=getattr(self.generator, "guide_kind", "lines"))
        val, val_labels = build_split(cfg, "val")
        groups = reference_groups(val_labels) if uses_reference else {}
        candidates = np.concatenate(list(groups.values())) if groups else np.arange(len(val))
        candidates.sort()
        # spread over the whole split, so validation covers many identities, not the first few
        pick = candidates[np.linspace(0, len(candidates) - 1, min(cfg.val_images, len(candidates))).round().astype(int)]
        self.val_images = val[torch.from_numpy(pick)]
        self.val_masks = validation_masks(cfg, len(self.val_images))
        self.val_sketches = validation_sketches(self.val_images, self.val_masks) if uses_sketch else None
        self.val_guides = None
        if uses_landmarks:  # the exact points, or the first guess under a worn mask, as training draws them
            lm = split_landmarks(cfg, "val")[pick]
            lm = lm[:, 0] if lm.ndim == 4 else lm
            kind = getattr(self.generator, "guide_kind", "lines")
            self.val_guides = np.stack([draw_guide(p, cfg.data.size, kind) for p in lm])
        self.val_references = None
        if uses_reference:  # the next image of the same label (a different photo), fixed
            refs = [int(g[(np.searchsorted(g, i) + 1) % len(g)]) for i in pick for g in [groups[int(val_labels[i])]]]
            self.val_references = val[torch.from_numpy(np.array(refs))]

    def train_dataloader(self) -> DataLoader:
        start = self.steps_done
        stop = min(start + self.cfg.ckpt_every, self.cfg.max_steps)
        return DataLoader(self.train_samples, batch_sampler=StepBatchSampler(start, stop, self.cfg.batch_size),
                          num_workers=self.cfg.num_workers, persistent_workers=False)

    # ------------------------------------------------------------------ optimisation

    def configure_optimizers(self):
        cfg = self.cfg
        opt_g = torch.optim.Adam(self.generator_parameters(), lr=cfg.lr_g, betas=cfg.betas)
        if self.discriminator is None:
            return opt_g
        return [opt_g, torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d, betas=cfg.betas)]

    def reconstruction_losses(self, out, image: torch.Tensor, mask: torch.Tensor,
                              sketch: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.cfg.loss == "pconv":
            return self.pconv_loss(out.image, image, mask)
        w = self.weights
        terms = {"l1": (out.image - image).abs().mean()}
        total = w["l1"] * terms["l1"]
        coarse = out.coarse if isinstance(out, DeepFillOutput) else None
        if coarse is not None:
            terms["l1_coarse"] = (coarse - image).abs().mean()
            total = total + w["l1_coarse"] * terms["l1_coarse"]
        if w.get("sketch_l1") and sketch is not None:
            terms["sketch_l1"] = sketch_band_l1([out.image, coarse], image, sketch * mask)
            total = total + w["sketch_l1"] * terms["sketch_l1"]
        for key, pred in (("l2", out.image), ("l2_coarse", coarse)):
            if w[key] and pred is not None:
                terms[key] = (pred - image).pow(2).mean()
                total = total + w[key] * terms[key]
        if self.features is not None and (w["perceptual"] or w["perceptual_output"]):
            gt = self.features(image)
            if w["perceptual"]:
                comp = composite(out.image, image, mask)
                terms["perceptual"] = perceptual_loss(self.features(comp), gt)
                total = total + w["perceptual"] * terms["perceptual"]
            if w["perceptual_output"]:
                terms["perceptual_output"] = perceptual_loss(self.features(out.image), gt)
                total = total + w["perceptual_output"] * terms["perceptual_output"]
        terms["total"] = total
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        image = batch["image"].contiguous(memory_format=CL)
        mask = batch["mask"].contiguous(memory_format=CL)
        opts = self.optimizers()
        opt_g, opt_d = (opts[0], opts[1]) if isinstance(opts, (list, tuple)) else (opts, None)
        guide = {k: batch[k].contiguous(memory_format=CL) for k in ("sketch", "guide") if k in batch}
        if self.steps_done < self.cfg.d_pretrain:
            self.discriminator_only_step(opt_d, image, mask, **guide)
            return
        out = self.generator(image * (1 - mask), mask, **guide)
        logs = {}
        cond = self.discriminator_guide(guide)
        if self.discriminator is not None and self.steps_done % self.cfg.d_every == 0:
            logs["d/hinge"] = self.discriminator_step(opt_d, image, mask, out.image.detach(), cond)
        terms = self.reconstruction_losses(out, image, mask, guide.get("sketch"))
        total = terms["total"]
        needs_comp = self.identity_network is not None or self.discriminator is not None or self.cfg.band_weight > 0
        comp = composite(out.image, image, mask) if needs_comp else None
        if self.cfg.band_weight:
            terms["band"] = band_loss(comp, image, mask, guide.get("guide"))
            total = total + self.cfg.band_weight * terms["band"]
        if self.identity_network is not None:
            with torch.no_grad():
                target = self.identity_network.embed(image)
            terms["identity"] = identity_loss(self.identity_network.embed(comp), target)
            total = total + self.identity_weight * terms["identity"]
        if self.discriminator is not None:
            g_adv = hinge_g_loss(self.discriminator(comp, mask, cond))
            total = total + self.cfg.gan_weight * g_adv
            logs["g/adv"] = g_adv.detach()
        self.generator_step(opt_g, total, terms, logs, image.shape[0])

    def discriminator_guide(self, guide: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """What a conditional discriminator (``discriminator.guide_channels``) sees besides the image
        and the mask: the generator's own guide, the landmark drawing or the sketch; None otherwise."""
        if self.discriminator is None or not self.discriminator.guide_channels:
            return None
        return guide.get("guide", guide.get("sketch"))

    def discriminator_step(self, opt_d, image: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor,
                           cond: torch.Tensor | None = None) -> torch.Tensor:
        """One hinge-loss step of the SN-PatchGAN: photos against ``fill`` (no gradient) composited
        into them, both with the same ``cond`` (see :meth:`discriminator_guide`). Returns the
        detached loss."""
        fake = composite(fill, image, mask)
        real_scores = self.discriminator(image, mask, cond)
        fake_scores = self.discriminator(fake, mask, cond)
        w = self.cfg.d_mismatch
        if w:  # validated: d_mismatch needs a conditional discriminator, so cond is given
            # the matching-aware discriminator (Reed et al., ICML 2016): a photo with another photo's
            # guide is a fake too, so the guide has to be read
            mismatched = self.discriminator(image, mask, mismatched_guide(cond, mask))
            d_loss = (F.relu(1.0 - real_scores).mean() + (1 - w) * F.relu(1.0 + fake_scores).mean()
                      + w * F.relu(1.0 + mismatched).mean())
        else:
            d_loss = hinge_d_loss(real_scores, fake_scores)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        return d_loss.detach()

    def discriminator_only_step(self, opt_d, image: torch.Tensor, mask: torch.Tensor, **guide) -> None:
        """A ``d_pretrain`` step: the discriminator learns on fills of the frozen generator.

        The generator runs in eval mode without gradients (its BatchNorm statistics stay as
        they are) and is not stepped; the step still counts towards ``max_steps``.
        """
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            fill = self.generator(image * (1 - mask), mask, **guide).image
        self.generator.train(was_training)
        d_loss = self.discriminator_step(opt_d, image, mask, fill, self.discriminator_guide(guide))
        self.steps_done += 1
        self.log_dict({"d/hinge": d_loss}, prog_bar=False, on_step=True, on_epoch=False, batch_size=image.shape[0])
        self.log("step", float(self.steps_done), prog_bar=True, on_step=True, on_epoch=False)

    def generator_step(self, opt_g, total: torch.Tensor, terms: dict[str, torch.Tensor], logs: dict,
                       batch_size: int) -> None:
        """Step the generator on ``total``, count the batch, log ``terms`` and ``logs``, stop at max_steps."""
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        opt_g.step()
        if self.generator_ema is not None:
            self.update_ema()
        self.steps_done += 1
        logs.update({f"g/{k}": v.detach() for k, v in terms.items()})
        logs["g/loss"] = total.detach()
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("step", float(self.steps_done), prog_bar=True, on_step=True, on_epoch=False)
        if self.steps_done >= self.cfg.max_steps:
            self.trainer.should_stop = True

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate_now(self, batch_size: int = 16, generator: torch.nn.Module | None = None
                     ) -> tuple[dict[str, float], np.ndarray, np.ndarray | None]:
        """Mean L1 % / PSNR / SSIM of composited fills on the fixed validation set.

        Returns the scores, uint8 (N, S, S, 3) composited outputs, and the raw coarse outputs
        (uint8, or None for models without a coarse stage). ``generator``: another network to score
        (the averaged one, ``generator_ema``) instead of the trained one, whose scores alone are kept
        as ``last_val``.
        """
        net = self.generator if generator is None else generator
        was_training = net.training
        net.eval()
        outputs, coarse = [], []
        for i in range(0, len(self.val_images), batch_size):
            image = self.val_images[i : i + batch_size].permute(0, 3, 1, 2).float() / 127.5 - 1.0
            mask = torch.from_numpy(self.val_masks[i : i + batch_size]).float()[:, None]
            image, mask = image.to(self.device, memory_format=CL), mask.to(self.device, memory_format=CL)
            extra = {}
            if self.val_references is not None:
                ref = self.val_references[i : i + batch_size].permute(0, 3, 1, 2).float() / 127.5 - 1.0
                extra["reference"] = ref.to(self.device, memory_format=CL)
            if self.val_sketches is not None:
                lines = torch.from_numpy(self.val_sketches[i : i + batch_size]).float()[:, None]
                extra["sketch"] = lines.to(self.device, memory_format=CL)
            if self.val_guides is not None:
                drawn = torch.from_numpy(self.val_guides[i : i + batch_size])[:, None]
                extra["guide"] = drawn.to(self.device, memory_format=CL)
            out = net(image * (1 - mask), mask, **extra)
            outputs.append(tensor_to_image(composite(out.image, image, mask)))
            if isinstance(out, DeepFillOutput):
                coarse.append(tensor_to_image(out.coarse))
        net.train(was_training)
        filled = np.concatenate(outputs)
        truth = self.val_images.numpy()
        scores = [score_image(o, t) for o, t in zip(filled, truth, strict=True)]
        means = {k: float(np.mean([min(s[k], 100.0) for s in scores])) for k in ("l1", "psnr", "ssim")}
        if generator is None:
            self.last_val = means
        return means, filled, (np.concatenate(coarse) if coarse else None)

    # ------------------------------------------------------------------ checkpoint state

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["unmasked"] = {"steps_done": self.steps_done, "config": self.cfg.to_dict(), "last_val": self.last_val}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("unmasked")
        if state is None:
            raise ValueError("not an unmasked training checkpoint (no 'unmasked' state)")
        saved = state["config"]
        if saved["model"] != self.cfg.model or saved["model_kwargs"] != self.cfg.model_kwargs:
            raise ValueError(
                f"checkpoint was trained as {saved['model']} {saved['model_kwargs']}, "
                f"but the config asks for {self.cfg.model} {self.cfg.model_kwargs}"
            )
        has_ema = any(k.startswith("generator_ema.") for k in checkpoint.get("state_dict", {}))
        if has_ema != (self.generator_ema is not None):
            raise ValueError(f"checkpoint was trained {'with' if has_ema else 'without'} a weight average "
                             f"(ema_decay {saved.get('ema_decay', 0.0)}), the config has ema_decay {self.cfg.ema_decay}: "
                             "set it as the run had it, or start a new stage with init_from")
        self.steps_done = int(state["steps_done"])
        self.last_val = dict(state.get("last_val", {}))
