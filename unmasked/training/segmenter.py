"""Train and evaluate the worn-mask segmenter (:mod:`unmasked.models.mask_segmenter`).

    nice -n 5 python -m unmasked.training.segmenter --out runs/mask_segmenter --max-steps 2400 --minutes 30
    python -m unmasked.training.segmenter --evaluate mask_segmenter      # held-out scores of the preset

Data (:mod:`unmasked.data.mask_seg`, decoded once into RAM, cached as ``.npz`` under ``--cache``,
default ``~/.cache/unmasked/segmenter``, outside the repository; ~20 min to build on a busy machine):
synthetic MaskTheFace-method masks on the train identities of ``celeba_wild256`` (procedural
kinds and MaskTheFace templates, most restyled with dark / neutral colours, MaskTheFace's textures
and printed marks: ``variety``), the same faces without a mask (empty target), and the train
80 % of the labelled MaskedFace-Net photos, aligned like the pipeline aligns faces. Each batch
holds fixed shares of the three (``--mix``). Augmentation, on the batch in torch: random
horizontal flip, a small random similarity (scale +-8 %, rotation +-8 degrees, shift +-5 %: the
alignment of a detected masked face is less exact than the dataset's), brightness / contrast /
saturation jitter, some greyscale, and noise.

Loss: binary cross-entropy + soft Dice (Milletari et al., "V-Net", 3DV 2016) over the whole batch
(so empty targets are well defined). Adam, cosine learning-rate decay, channels-last, fp32. One
intra-op thread by default (``--threads``): on the shared 2-core machine, with another training
run busy, two threads made each step 3-4x *slower* (threads waiting on each other); one thread
ran at ~10 images/s at 64 x 64 on a loaded machine and at 70-76 images/s beside one face-model run.
Deterministic by ``--seed``: batch ``k`` draws from ``default_rng([seed, k])`` and a torch
generator seeded with ``seed * 1_000_003 + k``.

Writes ``mask_segmenter.safetensors`` (fp32, every ``--ckpt-every`` steps and at the end),
``mask_segmenter_fp16.safetensors`` (for shipping), ``metrics.json`` (held-out scores, see
:func:`evaluate_all`) and ``log.csv`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unmasked.api import load_model
from unmasked.checkpoint import save_checkpoint
from unmasked.conventions import load_image
from unmasked.data.datasets import list_images
from unmasked.data.mask_seg import (
    MFN_LABEL_MASK,
    SegBank,
    aligned_landmarks,
    cached,
    mfn_bank,
    mfn_files,
    mfn_split,
    synthetic_bank,
)
from unmasked.faces import align_face, detect_faces
from unmasked.masks.face_mask import TemplateSet
from unmasked.pipelines.unmask import (
    DILATE,
    MIN_MASK_AREA,
    REFRAME_ZOOMS,
    _to_photo,
    hole_from_probability,
    segment_aligned,
    unmask_array,
    worn_mask_region,
)
from unmasked.registry import create_model

DATA = Path("../shared/data")


@dataclass
class SegmenterConfig:
    out: str = "runs/mask_segmenter"
    faces: str = str(DATA / "faces" / "celeba_wild256")
    mfn: str = str(DATA / "masked_faces_seg")
    templates: str = str(DATA / "mask_the_face" / "masks")
    cache: str = str(Path.home() / ".cache" / "unmasked" / "segmenter")
    base_channels: int = 16
    levels: int = 4
    working_size: int = 64
    variants: int = 2
    #: recolour / pattern most synthetic masks (dark, neutral, printed: see ``random_restyle``)
    variety: bool = True
    batch_size: int = 16
    mix: dict = field(default_factory=lambda: {"masked": 0.5, "none": 0.25, "mfn": 0.25})
    lr: float = 2e-3
    max_steps: int = 2400
    minutes: float = 30.0
    ckpt_every: int = 250
    seed: int = 0
    threads: int = 1


# --------------------------------------------------------------------------- data


def load_data(cfg: SegmenterConfig) -> dict:
    """{"train": SegBank (synthetic), "val": SegBank (synthetic), "mfn": SegBank, "mfn_extra": dict}."""
    cache = Path(cfg.cache)
    lm = aligned_landmarks(cfg.faces, cache / "celeba_wild256_lm256_fixedbox.npz")
    templates = TemplateSet.from_folder(cfg.templates) if cfg.templates else None
    tag = f"v{cfg.variants}_s{cfg.seed}_{'tpl' if templates else 'proc'}{'_var' if cfg.variety else ''}"
    train = cached(cache / f"seg_train_{tag}.npz", synthetic_bank, cfg.faces, "train", landmarks=lm,
                   templates=templates, variants=cfg.variants, seed=cfg.seed, variety=cfg.variety)
    val = cached(cache / f"seg_val_{tag}.npz", synthetic_bank, cfg.faces, "val", landmarks=lm,
                 templates=templates, variants=cfg.variants, seed=cfg.seed + 1, variety=cfg.variety)
    mfn, extra = cached(cache / "mfn_aligned128.npz", mfn_bank, cfg.mfn)
    return {"train": train, "val": val, "mfn": mfn, "mfn_extra": extra}


def _to_tensors(images: np.ndarray, targets: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    t = torch.from_numpy(targets).float()[:, None] / 255
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x, t


def augment(x: torch.Tensor, t: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip, similarity, colour jitter, greyscale and noise on a batch (see module docstring)."""
    n = x.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, generator=gen) * (hi - lo) + lo

    flip = torch.rand(n, generator=gen) < 0.5
    x, t = torch.where(flip[:, None, None, None], x.flip(-1), x), torch.where(flip[:, None, None, None], t.flip(-1), t)
    angle, scale = u(-8, 8) * math.pi / 180, u(0.92, 1.08)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, :, 2] = u(-0.1, 0.1, 2)  # +-5 % of the side (grid units span 2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    t = F.grid_sample(t, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    grey = x.mean(dim=1, keepdim=True)
    sat = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.1, 0.0, u(0.6, 1.4, 1, 1, 1))
    x = grey + (x - grey) * sat
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.75, 1.25, 1, 1, 1) + mean + u(-0.15, 0.15, 1, 1, 1)
    x = x + torch.randn(x.shape, generator=gen) * u(0, 0.04, 1, 1, 1)
    return x.clamp(-1, 1), t


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice over the whole batch; ``target`` (N, 1, S, S) coverage in [0, 1]."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


# --------------------------------------------------------------------------- training


def train(cfg: SegmenterConfig) -> dict:
    """Train, checkpoint and evaluate; returns the metrics (also in ``out/metrics.json``)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    t0 = time.time()
    data = load_data(cfg)
    prep_s = time.time() - t0
    train_bank, mfn = data["train"], data["mfn"]
    pools = {
        "masked": np.flatnonzero(train_bank.kinds != "none"),
        "none": np.flatnonzero(train_bank.kinds == "none"),
        "mfn": np.flatnonzero(mfn.kinds == "train"),
    }
    counts = {k: int(round(v * cfg.batch_size)) for k, v in cfg.mix.items()}
    counts["masked"] += cfg.batch_size - sum(counts.values())
    print(f"data ready in {prep_s:.0f} s: " + ", ".join(f"{k} {len(v)}" for k, v in pools.items()), flush=True)

    model = create_model("mask_segmenter", base_channels=cfg.base_channels, levels=cfg.levels,
                         working_size=cfg.working_size)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, cfg.max_steps) / cfg.max_steps))))
    log = open(out / "log.csv", "w")
    log.write("step,seconds,loss,lr\n")
    start, step, ema = time.time(), 0, None
    for step in range(1, cfg.max_steps + 1):
        rng = np.random.default_rng([cfg.seed, step])
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        parts = []
        for k, c in counts.items():
            bank = mfn if k == "mfn" else train_bank
            idx = rng.choice(pools[k], c, replace=False)
            parts.append(_to_tensors(bank.images[idx], bank.targets[idx], cfg.working_size))
        x, t = augment(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), gen)
        logits = model(x.contiguous(memory_format=torch.channels_last))
        loss = seg_loss(logits, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        elapsed = time.time() - start
        if step % 25 == 0:
            log.write(f"{step},{elapsed:.1f},{ema:.4f},{sched.get_last_lr()[0]:.2e}\n")
            log.flush()
        if step % 100 == 0:
            print(f"step {step} loss {ema:.4f} {step * cfg.batch_size / elapsed:.1f} img/s", flush=True)
        if step % cfg.ckpt_every == 0:
            save_checkpoint(model.eval(), out / "mask_segmenter.safetensors", metadata={"steps": step})
            model.train()
        if elapsed > cfg.minutes * 60:
            print(f"time budget reached at step {step}", flush=True)
            break
    train_s = time.time() - start
    model.eval()
    meta = {"steps": step, "batch_size": cfg.batch_size, "images_seen": step * cfg.batch_size,
            "train_seconds": round(train_s), "data_seconds": round(prep_s), "seed": cfg.seed}
    save_checkpoint(model, out / "mask_segmenter.safetensors", metadata=meta)
    metrics = evaluate_all(model, data, cfg.mfn)
    meta["scores"] = {k: v for k, v in metrics.items() if k != "thresholds"}
    save_checkpoint(model, out / "mask_segmenter_fp16.safetensors", dtype=torch.float16, metadata=meta)
    (out / "metrics.json").write_text(json.dumps({"train": meta, **metrics}, indent=2))
    return metrics


# --------------------------------------------------------------------------- evaluation


def iou_dice(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of two bool masks; both 1.0 when both are empty."""
    inter, a, b = np.logical_and(pred, target).sum(), pred.sum(), target.sum()
    if a + b == 0:
        return 1.0, 1.0
    return float(inter / (a + b - inter)), float(2 * inter / (a + b))


def evaluate_mfn(segmenter, mfn: SegBank, extra: dict, mfn_root: str, *, split: str = "val",
                 dilate: float | None = None, grow: float = 0.05) -> dict:
    """Held-out MaskedFace-Net scores **in the photo's pixels**: the crop prediction warped back,
    against ``label == 2``; the landmark heuristic (:func:`worn_mask_region`, ``grow=0`` and
    ``grow``) on the same faces. Photos whose face was not detected count as IoU 0 for every method
    (the pipeline would not touch them). ``coverage`` = fraction of label pixels inside the pipeline's hole."""
    from PIL import Image

    dilate = DILATE if dilate is None else dilate
    files = {k: lbl for k, _, lbl in mfn_files(mfn_root) if mfn_split(k) == split}
    rows = {k: i for i, k in enumerate(mfn.keys)}
    size = mfn.images.shape[1]
    sel = [rows[k] for k in files if k in rows]
    probs = segment_aligned(segmenter, mfn.images[sel]) if sel else np.zeros((0, size, size))
    scores: dict[str, list] = {m: [] for m in ("segmenter", "heuristic_raw", "heuristic")}
    coverage: dict[str, list] = {"segmenter": [], "heuristic": []}
    crop_iou = []
    for j, key in enumerate(k for k in files if k in rows):
        i = rows[key]
        label = np.asarray(Image.open(files[key])) == MFN_LABEL_MASK
        shape, m, lm = label.shape, extra["matrices"][i], extra["landmarks"][i]
        pred = _to_photo(probs[j] > 0.5, m, shape)
        hole = _to_photo(hole_from_probability(probs[j], dilate), m, shape)
        heur_raw = _to_photo(worn_mask_region(lm, size, 0.0), m, shape)
        heur = _to_photo(worn_mask_region(lm, size, grow), m, shape)
        scores["segmenter"].append(iou_dice(pred, label))
        scores["heuristic_raw"].append(iou_dice(heur_raw, label))
        scores["heuristic"].append(iou_dice(heur, label))
        coverage["segmenter"].append((hole & label).sum() / max(label.sum(), 1))
        coverage["heuristic"].append((heur & label).sum() / max(label.sum(), 1))
        crop_iou.append(iou_dice(probs[j] > 0.5, mfn.targets[i] > 127)[0])
    n_missed = len(files) - len(sel)
    out = {"files": len(files), "faces_detected": len(sel), "crop_iou_segmenter": float(np.mean(crop_iou))}
    for name, vals in scores.items():
        arr = np.array(vals + [(0.0, 0.0)] * n_missed)
        out[f"iou_{name}"], out[f"dice_{name}"] = float(arr[:, 0].mean()), float(arr[:, 1].mean())
    for name, vals in coverage.items():
        out[f"coverage_{name}"] = float(np.mean(vals))
    return out


def evaluate_mfn_pipeline(segmenter, mfn_root: str, *, split: str = "val", zooms=None, every: int = 1,
                          detector: str = "blazeface") -> dict:
    """Held-out MaskedFace-Net through the whole ``unmask`` pipeline (detection with ``detector``,
    alignment, reframing with ``zooms``, the segmenter, dilation), in the photo's pixels.

    :func:`evaluate_mfn` scores the segmenter on the plain FFHQ crop; this is what a user gets. For
    the largest restored face of each photo: IoU of the predicted mask with ``label == 2``, and
    ``coverage``, the share of label pixels inside the filled hole. A photo with no restored face
    counts as 0 for both. The filler does not change the masks, so Telea is used (fast). ``every``
    scores every n-th photo of the split (a quick check)."""
    from PIL import Image

    zooms = REFRAME_ZOOMS if zooms is None else tuple(zooms)
    filler = load_model("telea")
    ious, covers, reframed = [], [], 0
    files = [f for f in mfn_files(mfn_root) if mfn_split(f[0]) == split][::every]
    for _, image, label_path in files:
        label = np.asarray(Image.open(label_path)) == MFN_LABEL_MASK
        result = unmask_array(load_image(image).rgb, filler, detector=detector, segmenter=segmenter, zooms=zooms)
        if not result.faces:
            ious.append(0.0)
            covers.append(0.0)
            continue
        i = int(np.argmax([f.box[2] * f.box[3] for f in result.faces]))
        ious.append(iou_dice(result.masks[i], label)[0])
        covers.append(float((result.region & label).sum() / max(label.sum(), 1)))
        reframed += result.faces[i].zoom != 1.0
    return {"photos": len(ious), "detector": detector, "zooms": list(zooms), "faces_reframed": int(reframed),
            "iou_pipeline": float(np.mean(ious)) if ious else float("nan"),
            "coverage_pipeline": float(np.mean(covers)) if covers else float("nan")}


def evaluate_synthetic(segmenter, val: SegBank) -> dict:
    """Synthetic held-out faces (val identities): IoU/Dice on masked ones (at the bank's size) and the
    predicted area on the same faces without a mask (the false-positive check)."""
    probs = np.concatenate([segment_aligned(segmenter, val.images[i : i + 64]) for i in range(0, len(val), 64)])
    pred = probs > 0.5
    masked = val.kinds != "none"
    sd = np.array([iou_dice(p, t > 127) for p, t in zip(pred[masked], val.targets[masked], strict=True)])
    area_none = pred[~masked].mean(axis=(1, 2))
    area_masked = pred[masked].mean(axis=(1, 2))
    return {
        "faces_masked": int(masked.sum()), "faces_unmasked": int((~masked).sum()),
        "iou": float(sd[:, 0].mean()), "dice": float(sd[:, 1].mean()),
        "unmasked_mean_area": float(area_none.mean()), "unmasked_p99_area": float(np.quantile(area_none, 0.99)),
        "unmasked_flagged_as_masked": float((area_none >= MIN_MASK_AREA).mean()),
        "masked_missed": float((area_masked < MIN_MASK_AREA).mean()),
    }


def evaluate_real_photos(segmenter, folder: str, limit: int = 60) -> dict:
    """Unlabelled real photos of masked people (e.g. RMFD): the share of detected faces on which a
    mask is found (a recall proxy; no pixel labels exist). ``limit`` photos, spread over the folder."""
    paths = list_images(folder)
    paths = paths[:: max(1, len(paths) // limit)][:limit]
    areas = []
    for p in paths:
        rgb = load_image(p).rgb
        for face in detect_faces(rgb)[:1]:
            areas.append(float((segment_aligned(segmenter, align_face(rgb, face, 128).image) > 0.5).mean()))
    areas_arr = np.array(areas)
    return {"photos": len(paths), "faces": len(areas), "mask_found": float((areas_arr >= MIN_MASK_AREA).mean()),
            "median_area": float(np.median(areas_arr)) if areas else float("nan")}


def evaluate_all(segmenter, data: dict, mfn_root: str) -> dict:
    return {"synthetic_val": evaluate_synthetic(segmenter, data["val"]),
            "mfn_val": evaluate_mfn(segmenter, data["mfn"], data["mfn_extra"], mfn_root)}


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: list[str] | None = None) -> None:
    defaults = SegmenterConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, value in asdict(defaults).items():
        if isinstance(value, dict):
            continue
        kind = _parse_bool if isinstance(value, bool) else type(value)
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    p.add_argument("--evaluate", metavar="WEIGHTS", help="only evaluate these weights (preset or .safetensors)")
    p.add_argument("--pipeline", action="store_true",
                   help="with --evaluate: also score held-out MaskedFace-Net through the whole unmask pipeline "
                        "(detection, reframing, dilation), with and without reframing")
    p.add_argument("--pipeline-detector", default="blazeface", choices=["blazeface", "all", "auto", "hog", "cnn"],
                   help="with --pipeline: the face detector")
    args = vars(p.parse_args(argv))
    weights = args.pop("evaluate")
    pipeline = args.pop("pipeline")
    detector = args.pop("pipeline_detector")
    if pipeline and not weights:
        p.error("--pipeline needs --evaluate WEIGHTS")
    cfg = SegmenterConfig(**args)
    if weights:
        torch.set_num_threads(cfg.threads)
        segmenter = load_model(weights)
        report = evaluate_all(segmenter, load_data(cfg), cfg.mfn)
        if pipeline:
            report["mfn_val_pipeline"] = evaluate_mfn_pipeline(segmenter, cfg.mfn, detector=detector)
            report["mfn_val_pipeline_no_reframing"] = evaluate_mfn_pipeline(segmenter, cfg.mfn, zooms=(),
                                                                            detector=detector)
        print(json.dumps(report, indent=2))
        return
    print(json.dumps(train(cfg), indent=2))


if __name__ == "__main__":
    main()
