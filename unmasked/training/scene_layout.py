"""Train the scene layout network (:mod:`unmasked.models.scene_layout`), the learned half of
``layout_patchmatch``.

    nice -n 5 python -m unmasked.training.scene_layout --out runs/scene_layout --max-steps 6000
    python -m unmasked.training.scene_layout --out runs/scene_layout --max-steps 9000   # goes on from state.pt

Data: the natural photos at hand, decoded once into RAM (longer side at most 400 px): the
training files of ``--scenes`` (CBSD68 + Sun-Hays; one file in five is held out, the same slice
``unmasked eval --split val --split-by file`` scores) and every photo of ``--photos`` (RMFD's real
photos of people, whose streets, rooms and skies are natural photos too). Half of each batch
comes from each. Every sample is a fresh random square crop of 35-100 % of the shorter side,
flipped at random, scaled to 256 px, with a fresh hole (free-form strokes with a box 30 %,
irregular 30 %, object-shaped 40 %, drawn at 256 px). The hole is prefilled by Telea at 256 px,
as the filler does at the photo's resolution, and the prefill, the hole's coverage and the photo
are scaled to the network's 64 px (:func:`unmasked.models.scene_layout.network_input`). Nothing
is reused, so 118 + 1,028 photos give as many different samples as the run has steps.

Loss: L1 over the hole's cells. Adam (``--lr``, betas 0.9 / 0.99, times 0.1 from step
``--lr-drop-at``), gradients clipped at norm 0.5. Deterministic by ``--seed``: batch ``k`` draws
from ``default_rng([seed, k])``, so a run that stops and goes on from ``state.pt`` sees the same
batches as one that never stopped.

Writes into ``--out``: ``state.pt`` (weights, optimiser and step, every ``--ckpt-every`` steps;
outside the repository), ``scene_layout.safetensors`` (fp32) and ``log.csv`` (step, training
loss, held-out L1 of the network and of its Telea start on a fixed set of 96 held-out crops).
``--export PATH`` writes the fp16 file that ships.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from unmasked.checkpoint import save_checkpoint
from unmasked.conventions import load_image
from unmasked.data.datasets import file_split, list_images
from unmasked.masks.generators import make_mask
from unmasked.models.scene_layout import SceneLayout, network_input
from unmasked.training.data import RandomCrops

#: the side samples are cut and holed at, before scaling to the network's side
SAMPLE = 256
#: a crop's side, as a fraction of the photo's shorter side (uniform in this range)
SCALES = (0.35, 1.0)
#: Telea's neighbourhood radius, as the filler's (``TeleaPatchMatch(radius=3)``)
TELEA_RADIUS = 3
#: what the shipped weights were trained on (the catalogue shows it)
DATA = "natural photos: CBSD68 + Sun-Hays training files, RMFD real photos (research-only)"
#: hole kinds and their shares (the seeds' mix plus object-shaped holes)
KINDS = (("free_form_box", 0.3), ("irregular", 0.3), ("object", 0.4))


def load_photos(root: str | Path, split: str | None = None, max_side: int = 400) -> RandomCrops:
    """The uint8 RGB photos below ``root`` (one side of the 1-in-5 file split if ``split``), each
    scaled so its longer side is at most ``max_side``, as random crops of :data:`SCALES` of the
    shorter side at :data:`SAMPLE` px (the Lightning trainer's ``data.scales`` crops)."""
    paths = list_images(root)
    if split:
        paths = [paths[i] for i in file_split(len(paths), split, 0.2)]
    photos = []
    for path in paths:
        rgb = load_image(path).rgb
        f = max_side / max(rgb.shape[:2])
        photos.append(cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else rgb)
    return RandomCrops(photos, SAMPLE, SCALES)


def sample(photos: RandomCrops, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random crop of a random photo, flipped half the time, and a fresh hole for it:
    (uint8 (S, S, 3), bool (S, S)) at :data:`SAMPLE` px."""
    crop = photos.draw(int(rng.integers(len(photos))), rng).numpy()
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    kind = KINDS[int(rng.choice(len(KINDS), p=[p for _, p in KINDS]))][0]
    return crop, make_mask(kind, (SAMPLE, SAMPLE), rng)


def to_tensors(items: list[tuple[np.ndarray, np.ndarray]], side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's input and target for square samples at ``side``: Telea's prefills (N, 3),
    the holes' coverage (N, 1) and the photos (N, 3), in [-1, 1]."""
    prefills, covers, photos = [], [], []
    for photo, hole in items:
        telea = cv2.inpaint(photo, hole.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
        prefill, cover, _ = network_input(telea, hole, side)
        prefills.append(prefill)
        covers.append(cover)
        photos.append(network_input(photo, hole, side)[0])
    return torch.cat(prefills), torch.cat(covers), torch.cat(photos)


def hole_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the hole's cells and the three channels."""
    return ((pred - target).abs() * mask).sum() / mask.sum().clamp(min=1) / 3


def train(out: Path, *, scenes: str, photos: str, max_steps: int, batch: int = 16, lr: float = 4e-4, seed: int = 0,
          ckpt_every: int = 250, threads: int = 1, log_every: int = 100, base_channels: int = 32,
          lr_drop_at: int | None = None) -> Path:
    """Train (or go on from ``out/state.pt``) up to ``max_steps``; returns the fp32 weights' path."""
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    pools = [load_photos(scenes, "train"), load_photos(photos)] if photos else [load_photos(scenes, "train")]
    held_out = load_photos(scenes, "val")
    val_items = [sample(held_out, np.random.default_rng([seed, 10**9, k])) for k in range(96)]
    torch.manual_seed(seed)
    model = SceneLayout(base_channels=base_channels, levels=4, working_size=64)  # all recorded in the weights
    opt = torch.optim.Adam(model.parameters(), lr, betas=(0.9, 0.99))
    step = 0
    state_path = out / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
    side = model.working_size
    val_prefill, val_cover, val_photo = to_tensors(val_items, side)
    val_flag = (val_cover > 0).float()
    log = out / "log.csv"
    new_log = not log.is_file()
    with log.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(["step", "loss", "val_l1", "val_l1_telea", "s_per_step"])
        t0 = time.time()
        start = step
        while step < max_steps:
            rng = np.random.default_rng([seed, step])
            items = [sample(pools[k % len(pools)], rng) for k in range(batch)]
            prefill, cover, photo = to_tensors(items, side)
            for group in opt.param_groups:
                group["lr"] = lr * (0.1 if lr_drop_at is not None and step >= lr_drop_at else 1.0)
            model.train()
            loss = hole_l1(model(prefill, cover).image, photo, (cover > 0).float())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            step += 1
            if step % log_every == 0 or step == max_steps:
                model.eval()
                with torch.no_grad():
                    val = hole_l1(model(val_prefill, val_cover).image, val_photo, val_flag).item()
                base = hole_l1(val_prefill, val_photo, val_flag).item()
                writer.writerow([step, f"{loss.item():.5f}", f"{val:.5f}", f"{base:.5f}",
                                 f"{(time.time() - t0) / (step - start):.3f}"])
                fh.flush()
            if step % ckpt_every == 0 or step == max_steps:
                torch.save({"net": model.state_dict(), "opt": opt.state_dict(), "step": step}, state_path)
                save_checkpoint(model.eval(), out / "scene_layout.safetensors", metadata={"steps": step})
    return out / "scene_layout.safetensors"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="run folder (state.pt, weights, log.csv)")
    p.add_argument("--scenes", default="../shared/data/scenes", help="natural photos; one file in five is held out")
    p.add_argument("--photos", default="../shared/data/real_masked_photos",
                   help="more natural photos, all used for training ('' for none)")
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--lr-drop-at", type=int, help="step from which the learning rate is a tenth")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-channels", type=int, default=32, help="the U-Net's first width (doubling over 4 stages)")
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export", type=Path, help="write the run's weights as fp16 to this .safetensors file and stop")
    args = p.parse_args(argv)
    if args.export:
        from unmasked.checkpoint import load_checkpoint  # only the export reads a checkpoint back

        model = load_checkpoint(args.out / "scene_layout.safetensors")
        meta = {**(model.checkpoint_metadata or {}), "data": DATA, "source": args.out.name}
        save_checkpoint(model, args.export, dtype=torch.float16, metadata=meta)
        return
    train(args.out, scenes=args.scenes, photos=args.photos, max_steps=args.max_steps, batch=args.batch, lr=args.lr,
          seed=args.seed, ckpt_every=args.ckpt_every, threads=args.threads, base_channels=args.base_channels,
          lr_drop_at=args.lr_drop_at)


if __name__ == "__main__":
    main()
