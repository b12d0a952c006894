"""Training speed at 128x128: images/second and achieved GFLOP/s, relative to a plain conv stack.

Absolute times drift on shared machines, so every figure is also given as a ratio to a
reference measured in the same process: a stack of plain 3x3 convolutions (channels-last,
forward + backward + Adam), the best case for the CPU's convolution kernels.

For each model the real training loop runs (``unmasked.training.fit`` with the model's
config on MNIST digits resized to 128x128, so no research data is needed); the time of
steps after a warm-up is measured with a callback. FLOPs per image are counted with
``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward of the generator
(and discriminator, where the config has one).

    python benchmarks/train_speed.py                 # all configs, ~5 minutes
    python benchmarks/train_speed.py --steps 6 --quick
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unmasked.training.config import load_config
from unmasked.training.fit import fit
from unmasked.training.module import InpaintingModule

CONFIGS = {
    "deepfill_v2 cnum24 + SN-PatchGAN(32), D every 5": {
        "model": "deepfill_v2", "model_kwargs": {"cnum": 24, "working_size": 128},
        "discriminator": {"cnum": 32}, "d_every": 5,
    },
    "deepfill_v2 cnum48 (paper width) + SN-PatchGAN(64)": {
        "model": "deepfill_v2", "model_kwargs": {"cnum": 48, "working_size": 128},
        "discriminator": {"cnum": 64}, "d_every": 1,
    },
    "pconv_unet 32->256, depth 6, pixel+TV loss": {
        "model": "pconv_unet", "model_kwargs": {"base_channels": 32, "max_channels": 256, "depth": 6, "working_size": 128},
        "loss": "pconv",
    },
}
QUICK = ["deepfill_v2 cnum24 + SN-PatchGAN(32), D every 5"]


def conv_stack_gflops(size: int, batch: int, steps: int, channels: int = 64, depth: int = 4) -> float:
    """Achieved GFLOP/s of plain 3x3 convs (forward + backward + Adam), channels-last."""
    layers = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    net = nn.Sequential(*layers).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        net(x).square().mean().backward()
    flops = counter.get_total_flops()
    for _ in range(2):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    return flops * steps / (time.perf_counter() - start) / 1e9


class StepTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times = warmup, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.times.append(time.perf_counter())


def flops_per_image(module: InpaintingModule, size: int) -> float:
    """FLOPs per image of one training step, as the module runs it.

    Generator step: G forward + backward, plus D forward + backward for the adversarial
    term; discriminator step (once every ``d_every`` batches): D on real and fake + backward.
    """
    image = torch.rand(2, 3, size, size) * 2 - 1
    mask = torch.zeros(2, 1, size, size)
    mask[:, :, size // 4 : size // 2, size // 4 : size // 2] = 1
    disc = module.discriminator
    with FlopCounterMode(display=False) as g_counter:
        out = module.generator(image * (1 - mask), mask)
        loss = out.image.abs().mean() + (disc(out.image, mask).mean() if disc is not None else 0)
        loss.backward()
    total = g_counter.get_total_flops()
    if disc is not None:
        with FlopCounterMode(display=False) as d_counter:
            (disc(image, mask).mean() + disc(out.image.detach(), mask).mean()).backward()
        total += d_counter.get_total_flops() / module.cfg.d_every
    return total / 2


def measure(name: str, overrides: dict, size: int, batch: int, steps: int, warmup: int, workdir: Path) -> dict:
    values = {"name": "bench", "out_dir": str(workdir / name.split()[0]), "data.kind": "mnist", "data.size": size,
              "masks": {"kinds": {"free_form_box": 1.0}, "bank_size": 200}, "batch_size": batch,
              "max_steps": steps + warmup, "ckpt_every": steps + warmup, "num_workers": 1, "val_images": 4, **overrides}
    cfg = load_config(None, values)
    timer = StepTimer(warmup)
    module = fit(cfg, enable_progress_bar=False, logger=False, callbacks=[timer])
    seconds = timer.times[-1] - timer.times[warmup]  # batches warmup .. last-1
    images_per_s = (len(timer.times) - 1 - warmup) * batch / seconds
    flops = flops_per_image(module, size)
    params = sum(p.numel() for p in module.generator.parameters())
    return {"config": name, "generator_params": params, "images_per_s": images_per_s,
            "gflop_per_image": flops / 1e9, "gflops": images_per_s * flops / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per config")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="only the default CPU config")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/train_speed.json"))
    args = parser.parse_args()

    reference = conv_stack_gflops(args.size, args.batch, steps=10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in QUICK if args.quick else CONFIGS:
            rows.append(measure(name, CONFIGS[name], args.size, args.batch, args.steps, args.warmup, Path(tmp)))
    print(f"\nplain 3x3 conv stack (64 ch, channels-last, fwd+bwd+Adam): {reference:.1f} GFLOP/s\n")
    print(f"| config ({args.size}², batch {args.batch}) | G params | images/s | GFLOP/image | GFLOP/s | vs conv stack |")
    print("|---|--:|--:|--:|--:|--:|")
    for r in rows:
        r["fraction_of_conv_stack"] = r["gflops"] / reference
        print(f"| {r['config']} | {r['generator_params'] / 1e6:.2f} M | {r['images_per_s']:.2f} | "
              f"{r['gflop_per_image']:.1f} | {r['gflops']:.1f} | {r['fraction_of_conv_stack']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"conv_stack_gflops": reference, "size": args.size, "batch": args.batch, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
