"""Training the reference-guided ``two_face`` model: local + global discriminators, identity loss, curriculum.

After the Two-Face report: the generator gets the masked face and a reference photo of the
same person; it is trained with

* reconstruction: L1 on coarse and refined outputs (+ perceptual with VGG weights), as
  DeepFill v2 (Yu et al., ICCV 2019) — always on;
* a **local** adversarial term from an SN-PatchGAN that sees a square around the hole, and a
  **global** one from an SN-PatchGAN that sees the whole face (hinge losses; the two
  discriminators of Iizuka et al., SIGGRAPH 2017, in SN-PatchGAN form);
* an **identity** term ``1 - cos`` between face embeddings of the composited output and of
  the reference (the role FaceNet plays in Two-Face), from a frozen identity network;
* with ``reference_strands`` > 0, that share of references is drawn over with thin strands
  and rims (:func:`draw_strands`) the target lacks: copying them costs reconstruction;
* with ``reference_dropout`` > 0, that share of batches is filled without the reference (no
  identity term then), so one model serves both reference-guided and plain face filling;

switched on in stages (**curriculum**, ``cfg.curriculum``): reconstruction → local adversarial
(its discriminator trains alone for ``d_warmup`` steps first) → global adversarial (same
warm-up) → identity. Every change of stage is printed and the active stage is logged as
``curriculum/stage`` (0 = reconstruction only, 1 = + local, 2 = + global, 3 = + identity).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from unmasked.checkpoint import load_state, read_checkpoint_info
from unmasked.conventions import composite
from unmasked.losses.gan import hinge_d_loss, hinge_g_loss
from unmasked.losses.identity import identity_loss
from unmasked.models.deepfill_v2 import SNPatchGAN
from unmasked.models.two_face import crop_around_holes
from unmasked.training.config import TrainConfig
from unmasked.training.module import CL, InpaintingModule

STAGES = ("reconstruction", "local_adv", "global_adv", "identity")


def draw_strands(reference: torch.Tensor, rng: np.random.Generator, share: float) -> torch.Tensor:
    """``reference`` (N, 3, S, S) in [-1, 1] with, on each image with probability ``share``, 2-8
    thin random polylines (hair across the face), each sometimes with an ellipse (a glasses rim),
    anti-aliased, 1-2 px at 128², each in one dark, grey or light colour. A new tensor."""
    out = reference.detach().clone()
    n, _, s, _ = out.shape
    for i in range(n):
        if rng.random() >= share:
            continue
        alpha = np.zeros((s, s), np.float32)
        colour = np.zeros((s, s, 3), np.float32)
        for _ in range(int(rng.integers(2, 9))):
            layer = np.zeros((s, s), np.float32)
            start = rng.uniform(0.1, 0.9, 2) * s
            angle = rng.uniform(0, 2 * np.pi)
            pts = [start]
            for _ in range(int(rng.integers(3, 7))):
                angle += rng.normal(0, 0.35)
                pts.append(pts[-1] + rng.uniform(0.04, 0.12) * s * np.array([np.cos(angle), np.sin(angle)]))
            thick = max(1, int(round(rng.uniform(0.6, 1.6) * s / 128)))
            cv2.polylines(layer, [np.round(np.array(pts) * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, 4)
            if rng.random() < 0.25:  # a rim: an ellipse around where an eye is
                centre = (int(s * rng.uniform(0.3, 0.7) * 16), int(s * rng.uniform(0.35, 0.55) * 16))
                axes = (int(s * rng.uniform(0.1, 0.18) * 16), int(s * rng.uniform(0.06, 0.12) * 16))
                cv2.ellipse(layer, centre, axes, rng.uniform(-20, 20), 0, 360, 1.0, thick, cv2.LINE_AA, 4)
            tone = rng.choice([-0.9, -0.6, 0.0, 0.7])
            c = np.clip(tone + rng.normal(0, 0.1, 3), -1, 1).astype(np.float32)
            colour = np.where(layer[..., None] > alpha[..., None], c, colour)
            alpha = np.maximum(alpha, layer)
        a = torch.from_numpy(alpha)[None].to(out.dtype)
        col = torch.from_numpy(colour).permute(2, 0, 1).to(out.dtype)
        out[i] = out[i] * (1 - a) + col * a
    return out


class TwoFaceModule(InpaintingModule):
    """:class:`InpaintingModule` for ``two_face``: ``self.discriminator`` is the global one."""

    def __init__(self, cfg: TrainConfig) -> None:
        if cfg.loss != "deepfill":
            raise ValueError(f"two_face trains with loss 'deepfill' (+ adversarial/identity terms), got {cfg.loss!r}")
        super().__init__(cfg)
        self.local_discriminator = (None if cfg.discriminator is None
                                    else SNPatchGAN(**cfg.discriminator).to(memory_format=CL))
        self.weights.setdefault("identity", 0.1)  # the identity network is loaded by InpaintingModule
        self.local_size = cfg.data.size // 2
        self._stage_seen = -1
        if "discriminator" in cfg.init_from:  # both discriminators start from the same weights
            self.local_discriminator.load_state_dict(self.discriminator.state_dict())

    # ------------------------------------------------------------------ set-up

    def _init_weights(self, init_from: dict[str, str]) -> None:
        """As the base class; a ``deepfill_v2`` of the same size is also accepted for the generator."""
        gen = init_from.get("generator")
        info = read_checkpoint_info(gen) if gen is not None else None
        if info is not None and info["model"] == "deepfill_v2":
            mine = dict(self.cfg.model_kwargs)
            if any(info["kwargs"].get(k) != v for k, v in mine.items() if k in ("cnum", "working_size", "attention")):
                raise ValueError(f"{gen} holds deepfill_v2 {info['kwargs']}, the config asks for two_face {mine}")
            self.generator.load_inpainter(load_state(gen))
            init_from = {k: v for k, v in init_from.items() if k != "generator"}
        super()._init_weights(init_from)

    def configure_optimizers(self):
        cfg = self.cfg
        opt_g = torch.optim.Adam(self.generator_parameters(), lr=cfg.lr_g, betas=cfg.betas)
        if self.discriminator is None:
            return opt_g
        params = list(self.discriminator.parameters()) + list(self.local_discriminator.parameters())
        return [opt_g, torch.optim.Adam(params, lr=cfg.lr_d, betas=cfg.betas)]

    # ------------------------------------------------------------------ curriculum

    def starts(self) -> dict[str, int]:
        """Step at which each term reaches the generator (a configured term not listed: step 0)."""
        c = self.cfg.curriculum
        return {"local_adv": c.get("local_adv", 0), "global_adv": c.get("global_adv", 0),
                "identity": c.get("identity", 0)}

    def active(self, step: int) -> dict[str, bool]:
        """Which terms train the generator / which discriminators train, at ``step``."""
        s, warm = self.starts(), self.cfg.curriculum.get("d_warmup", 0)
        has_d, has_id = self.discriminator is not None, self.identity_network is not None
        return {
            "local_adv": has_d and step >= s["local_adv"],
            "global_adv": has_d and step >= s["global_adv"],
            "identity": has_id and step >= s["identity"] and self.weights["identity"] > 0,
            "train_local_d": has_d and step >= s["local_adv"] - warm,
            "train_global_d": has_d and step >= s["global_adv"] - warm,
        }

    def stage(self, step: int) -> int:
        on = self.active(step)
        return sum(bool(on[k]) for k in ("local_adv", "global_adv", "identity"))

    def describe_loss(self) -> str:
        w, s = self.weights, self.starts()
        parts = [f"two_face: {w['l1']:g}*L1(refined) + {w['l1_coarse']:g}*L1(coarse){self.describe_l2()}"]
        parts.append(f"{w['perceptual']:g}*perceptual" if self.features is not None else "perceptual OFF (no feature_weights)")
        if self.discriminator is None:
            parts.append("adversarial OFF (no discriminator)")
        else:
            warm = self.cfg.curriculum.get("d_warmup", 0)
            parts.append(f"{self.cfg.gan_weight:g}*local hinge GAN from step {s['local_adv']}"
                         f" + {self.cfg.gan_weight:g}*global hinge GAN from step {s['global_adv']}"
                         f" (each D warms up alone for {warm} steps, steps every {self.cfg.d_every} batches)")
        parts.append(f"{w['identity']:g}*identity(1-cos, {Path(self.cfg.identity_network).name}) from step {s['identity']}"
                     if self.identity_network is not None else "identity OFF (no identity_network)")
        return "; ".join(parts)

    # ------------------------------------------------------------------ optimisation

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        image = batch["image"].contiguous(memory_format=CL)
        mask = batch["mask"].contiguous(memory_format=CL)
        reference = batch["reference"].contiguous(memory_format=CL)
        step = self.steps_done
        on = self.active(step)
        stage = self.stage(step)
        if stage != self._stage_seen and self.global_rank == 0:
            names = [n for n in STAGES[1:] if on[n]]
            print(f"\n[unmasked] step {step}: curriculum stage {stage}: reconstruction"
                  + "".join(f" + {n}" for n in names), flush=True)
        self._stage_seen = stage
        opts = self.optimizers()
        opt_g, opt_d = (opts[0], opts[1]) if isinstance(opts, (list, tuple)) else (opts, None)
        dropped = bool(np.random.default_rng([self.cfg.seed, step, 7]).random() < self.cfg.reference_dropout)
        seen = reference
        if self.cfg.reference_strands > 0 and not dropped:  # drawn by step: resumes stay exact
            seen = draw_strands(reference, np.random.default_rng([self.cfg.seed, step, 11]),
                                self.cfg.reference_strands).contiguous(memory_format=CL)
        out = self.generator(image * (1 - mask), mask, reference=None if dropped else seen)
        comp = composite(out.image, image, mask)
        logs: dict[str, torch.Tensor | float] = {"curriculum/stage": float(stage), "reference_used": float(not dropped)}

        if opt_d is not None and (on["train_local_d"] or on["train_global_d"]) and step % self.cfg.d_every == 0:
            fake = comp.detach()
            d_loss = image.new_zeros(())
            if on["train_global_d"]:
                g = hinge_d_loss(self.discriminator(image, mask), self.discriminator(fake, mask))
                d_loss, logs["d/global"] = d_loss + g, g.detach()
            if on["train_local_d"]:
                crop = lambda t: crop_around_holes(t, mask, self.local_size)  # noqa: E731
                loc = hinge_d_loss(self.local_discriminator(crop(image), crop(mask)),
                                   self.local_discriminator(crop(fake), crop(mask)))
                d_loss, logs["d/local"] = d_loss + loc, loc.detach()
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()

        terms = self.reconstruction_losses(out, image, mask)
        total = terms["total"]
        if on["global_adv"]:
            terms["global_adv"] = hinge_g_loss(self.discriminator(comp, mask))
            total = total + self.cfg.gan_weight * terms["global_adv"]
        if on["local_adv"]:
            local_mask = crop_around_holes(mask, mask, self.local_size)
            terms["local_adv"] = hinge_g_loss(self.local_discriminator(crop_around_holes(comp, mask, self.local_size),
                                                                       local_mask))
            total = total + self.cfg.gan_weight * terms["local_adv"]
        if on["identity"] and not dropped:
            with torch.no_grad():
                target = self.identity_network.embed(reference)
            terms["identity"] = identity_loss(self.identity_network.embed(comp), target)
            total = total + self.weights["identity"] * terms["identity"]
        self.generator_step(opt_g, total, terms, logs, image.shape[0])
