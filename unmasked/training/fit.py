"""``fit(config)``: build the Trainer, train, checkpoint, validate, resume.

Checkpointing is every ``ckpt_every`` batches: each Lightning "epoch" is one checkpoint
interval, so every checkpoint lies on an epoch boundary and a resume continues with exactly
the batches that would have come next (see :mod:`unmasked.training.data`). A checkpoint is
written under a temporary name and renamed, so a run killed mid-write leaves the previous
``last.ckpt`` intact. At every checkpoint the generator is also exported as a self-describing
safetensors file (``generator.safetensors``) that ``unmasked fill --model`` accepts, the
fixed validation set is scored with the evaluation metrics, and a sample grid is written.

Run folder: ``<out_dir>/<name>/`` with ``config.yaml`` (resolved), ``last.ckpt``,
``generator.safetensors``, ``samples/step_XXXXXX.png``, ``logs/metrics.csv`` and ``tb/``
(TensorBoard); with ``ema_decay``, also ``generator_ema.safetensors`` and
``samples/step_XXXXXX_ema.png`` (the weights' moving average).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from unmasked.checkpoint import save_checkpoint
from unmasked.conventions import save_image
from unmasked.training.config import TrainConfig, save_config
from unmasked.training.module import InpaintingModule, save_discriminator
from unmasked.training.two_face import TwoFaceModule


def sample_grid(masked: np.ndarray, filled: np.ndarray, truth: np.ndarray, coarse: np.ndarray | None = None,
                rows: int = 4, reference: np.ndarray | None = None) -> np.ndarray:
    """Rows of [reference |] masked input | coarse (if any) | output (composited) | ground truth, uint8 (H', W', 3)."""
    rows = min(rows, len(truth))
    columns = [masked, filled, truth] if coarse is None else [masked, coarse, filled, truth]
    if reference is not None:
        columns.insert(0, reference)
    return np.concatenate([np.concatenate([c[i] for c in columns], axis=1) for i in range(rows)], axis=0)


class CheckpointEveryInterval(Callback):
    """At the end of each interval: validate, write samples, export weights, save ``last.ckpt``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_train_epoch_end(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        step = module.steps_done
        if trainer.is_global_zero:
            truth = module.val_images.numpy()
            masked = np.where(module.val_masks[..., None], 255, truth).astype(np.uint8)
            lines = getattr(module, "val_sketches", None)
            if lines is not None:  # the sketch the model was given, drawn black in the white hole
                masked[lines] = 0
            refs = getattr(module, "val_references", None)
            # the trained weights, and with ema_decay their moving average beside them ("_ema")
            networks = [(module.generator, "", {})]
            if module.generator_ema is not None:
                networks.append((module.generator_ema, "_ema", {"ema_decay": module.cfg.ema_decay}))
            for net, tag, extra in networks:
                scores, filled, coarse = module.validate_now(generator=None if tag == "" else net)
                for logger in trainer.loggers:
                    logger.log_metrics({f"val{tag}/{k}": v for k, v in scores.items()}, step=step)
                grid = sample_grid(masked, filled, truth, coarse, reference=None if refs is None else refs.numpy())
                save_image(self.run_dir / "samples" / f"step_{step:06d}{tag}.png", grid)
                if tag == "":
                    for logger in trainer.loggers:
                        if isinstance(logger, TensorBoardLogger):
                            logger.experiment.add_image("samples", grid, step, dataformats="HWC")
                meta = {"steps": step, "val": scores, "run": module.cfg.name, "batch_size": module.cfg.batch_size,
                        "size": module.cfg.data.size, **extra}
                save_checkpoint(net, self.run_dir / f"generator{tag}.safetensors", metadata=meta)
                if module.cfg.keep_snapshots:
                    (self.run_dir / "snapshots").mkdir(exist_ok=True)
                    save_checkpoint(net, self.run_dir / "snapshots" / f"generator{tag}_{step:06d}.safetensors",
                                    metadata=meta)
            if module.discriminator is not None:
                save_discriminator(module.discriminator, module.cfg.discriminator, self.run_dir / "discriminator.safetensors")
        tmp = self.run_dir / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp)  # collective under DDP: every rank calls it, rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.run_dir / "last.ckpt")


def resolve_resume(cfg: TrainConfig) -> str | None:
    """``resume_checkpoint``: a path, or "last" for this run's ``last.ckpt`` (None if absent)."""
    if cfg.resume_checkpoint is None:
        return None
    path = cfg.run_dir / "last.ckpt" if cfg.resume_checkpoint == "last" else Path(cfg.resume_checkpoint)
    if not path.is_file():
        if cfg.resume_checkpoint == "last":
            return None
        raise FileNotFoundError(f"resume checkpoint not found: {path}")
    return str(path)


def build_trainer(cfg: TrainConfig, **overrides) -> L.Trainer:
    strategy = "auto"
    if cfg.devices > 1:
        from lightning.pytorch.strategies import DDPStrategy

        backend = "gloo" if cfg.accelerator == "cpu" else None
        strategy = DDPStrategy(find_unused_parameters=True, process_group_backend=backend)
    kwargs = dict(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=strategy,
        precision=cfg.precision,
        max_epochs=-1,  # the module stops itself after max_steps batches
        reload_dataloaders_every_n_epochs=1,  # each interval's sampler starts at steps_done
        use_distributed_sampler=False,  # samples are already distinct per rank
        logger=[CSVLogger(cfg.run_dir, name="logs", version=""), TensorBoardLogger(cfg.run_dir, name="tb", version="")],
        callbacks=[CheckpointEveryInterval(cfg.run_dir)],
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        log_every_n_steps=cfg.log_every,
        enable_model_summary=False,
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def module_for(cfg: TrainConfig) -> InpaintingModule:
    """The LightningModule for ``cfg.model``: reference-guided ``two_face`` has its own (curriculum)."""
    if cfg.model == "two_face":
        return TwoFaceModule(cfg)
    if cfg.curriculum:
        raise ValueError(f"curriculum is only used by the two_face model, not {cfg.model!r}")
    return InpaintingModule(cfg)


def fit(cfg: TrainConfig, **trainer_overrides) -> InpaintingModule:
    """Train (or resume) the run described by ``cfg``; returns the trained module."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = module_for(cfg)
    save_config(cfg, cfg.run_dir / "config.yaml")
    trainer = build_trainer(cfg, **trainer_overrides)
    ckpt = resolve_resume(cfg)
    if trainer.is_global_zero:
        print(f"[unmasked] {cfg.name}: {module.describe_loss()}", flush=True)
        if cfg.ema_decay:
            print(f"[unmasked] keeping the generator's weight average (ema_decay {cfg.ema_decay:g}) as generator_ema",
                  flush=True)
        if ckpt:
            print(f"[unmasked] resuming from {ckpt}", flush=True)
    # our checkpoints hold only tensors and plain containers: never unpickle arbitrary objects
    trainer.fit(module, ckpt_path=ckpt, weights_only=True)
    return module
