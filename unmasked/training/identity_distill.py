"""Distil dlib's face descriptor into the project's own small, shippable identity embedder.

Knowledge distillation (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015) of
a metric embedding: the student (a width-reduced MobileFaceNet, Chen et al. 2018, see
:mod:`unmasked.models.face_identity`) regresses the unit-length dlib descriptor of each training
face (cosine loss), so distances between student embeddings mimic dlib's -- whose network is
public domain -- without shipping dlib's network or any research-only weights.

Two steps, both CPU-friendly:

1. :func:`unmasked.data.face_cache.build_cache` runs dlib once over ``<root>/<identity>/<image>`` folders (HOG detection,
   68 landmarks, 128-d descriptor) and stores, per image, the FFHQ-aligned 128 x 128 crop
   (:func:`unmasked.faces.align.align_face`), its landmarks in crop pixels and the descriptor,
   in shards below a cache folder outside the repository. Held-out identities
   (:func:`unmasked.data.datasets.identity_split` == "val") come first, capped per identity,
   then the training identities in a seeded random order, so a run stopped at any time leaves a
   usable prefix. Shards are written as they fill; a rerun skips cached images.
2. :func:`train_student` trains on the *training identities only*, with horizontal flips and a
   small random similarity jitter of the 5-point alignment, under a wall-time budget.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from unmasked.checkpoint import save_checkpoint
from unmasked.conventions import load_image
from unmasked.data.datasets import identity_split, scan_identities
from unmasked.data.face_cache import CROP_SIZE, FaceCache, build_cache, load_cache  # noqa: F401 (re-exported)
from unmasked.faces.align import alignment_matrix
from unmasked.faces.detect import detect_faces
from unmasked.layers.face_template import align_to_template, mean_landmarks
from unmasked.models.face_identity import build_student

# --------------------------------------------------------------------------- training data


def _celeba_matrix(paths: list[Path], size: int, n: int = 40) -> np.ndarray:
    """One fixed FFHQ alignment for CelebA ``img_align_celeba`` (its faces are already eye-aligned):
    from the mean 68 landmarks of ``n`` of its images (geometry only, no identity information)."""
    lms = []
    for p in paths[:: max(1, len(paths) // n)][:n]:
        faces = detect_faces(load_image(p).rgb, detector="hog", upsample=0)
        if faces:
            lms.append(faces[0].landmarks)
    return alignment_matrix(np.mean(lms, axis=0), size)


def training_faces(roots: list[str | os.PathLike], cache_dir: str | os.PathLike, *, val_fraction: float = 0.2,
                   split_seed: int = 0, size: int = CROP_SIZE, log=print) -> dict[str, np.ndarray]:
    """FFHQ-aligned ``size`` crops of every image of the *training* identities, without running dlib.

    A square folder (celeba_wild256) is already FFHQ-aligned and is only resized; CelebA's
    178 x 218 aligned crops get one fixed alignment (:func:`_celeba_matrix`). Returns (and caches
    in ``cache_dir/train_crops_<size>.npz``) ``keys``, ``identity``, ``crops`` uint8 (N, S, S, 3).
    """
    import cv2

    out_path = Path(cache_dir) / f"train_crops_{size}.npz"
    if out_path.is_file():
        return dict(np.load(out_path, allow_pickle=False))
    keys, idents, crops = [], [], []
    for root in map(Path, roots):
        groups = {i: ps for i, ps in scan_identities(root).items() if identity_split(i, val_fraction, split_seed) == "train"}
        celeba = None
        for ident, paths in groups.items():
            for p in paths:
                rgb = load_image(p).rgb
                if rgb.shape[0] == rgb.shape[1]:
                    crop = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
                else:
                    if celeba is None:
                        celeba = _celeba_matrix([q for ps in groups.values() for q in ps], size)
                    crop = cv2.warpAffine(rgb, celeba, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT_101)
                keys.append(f"{root.name}/{ident}/{p.name}")
                idents.append(ident)
                crops.append(crop)
        log(f"{root}: {len(groups)} training identities")
    data = {"keys": np.array(keys), "identity": np.array(idents), "crops": np.stack(crops)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, **data)
    return data


# --------------------------------------------------------------------------- training


def _jittered_landmarks(base: torch.Tensor, n: int, g: torch.Generator, size: int) -> torch.Tensor:
    """``base`` (68, 2) moved by a random similarity per sample: rotation +-6 deg, scale +-6 %, shift +-3 % of the side."""
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(6)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.06
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * 0.03 * size
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)  # (n, 2, 2)
    c = size / 2 - 0.5
    return (base - c) @ rot.transpose(1, 2) + c + shift[:, None]


def train_student(data: dict[str, np.ndarray], out: str | os.PathLike, *, minutes: float = 20.0,
                  batch_size: int = 64, lr: float = 2e-3, margin: float = 0.2, scale: float = 30.0,
                  distill_weight: float = 4.0, seed: int = 0, log=print) -> dict:
    """Train the student (:func:`unmasked.models.face_identity.build_student`) for ``minutes`` of wall time.

    ``data``: ``crops`` uint8 (N, S, S, 3) FFHQ-aligned, ``identity`` (N,), optional ``descriptor``
    (N, 128) raw dlib with NaN rows where unknown. Loss: CosFace (Wang et al., CVPR 2018; additive
    cosine ``margin``, ``scale``) over the training identities + ``distill_weight`` * (1 - cos)
    to the centred unit dlib descriptor where known. Augmentation: alignment jitter, horizontal flip,
    brightness/contrast. Writes ``out`` (fp16) and returns the training summary.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    crops = torch.from_numpy(data["crops"]).permute(0, 3, 1, 2).contiguous()  # uint8 (N, 3, S, S)
    n, size = crops.shape[0], crops.shape[-1]
    names, labels = np.unique(data["identity"], return_inverse=True)
    labels = torch.from_numpy(labels).long()
    desc = torch.full((n, 128), float("nan"))
    if "descriptor" in data:
        desc = torch.from_numpy(data["descriptor"]).float()
    has_desc = ~torch.isnan(desc).any(1)
    if has_desc.any():
        # dlib's unit descriptors share a large common direction (impostor cosine ~0.83): regress
        # the centred ones, whose directions carry the identity
        desc = torch.nn.functional.normalize(desc - desc[has_desc].mean(0), dim=1)

    student = build_student()
    student.train()
    net = student.net.to(memory_format=torch.channels_last)
    head = torch.nn.Parameter(torch.randn(len(names), student.dim) * 0.01)
    params = list(net.parameters()) + [head]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    base = mean_landmarks(size)
    hw = student.net.input_hw
    start, budget, step, seen = time.time(), minutes * 60, 0, 0
    log(f"{n} faces, {len(names)} identities, {int(has_desc.sum())} with a dlib descriptor")
    while (elapsed := time.time() - start) < budget:
        frac = elapsed / budget
        for group in opt.param_groups:  # warm-up, then cosine decay over the time budget
            group["lr"] = lr * min(1.0, frac / 0.03) * 0.5 * (1 + math.cos(math.pi * frac))
        idx = torch.randint(n, (batch_size,), generator=g)
        with torch.no_grad():
            x = crops[idx].float() / 127.5 - 1
            contrast = 1 + (torch.rand(batch_size, 1, 1, 1, generator=g) * 2 - 1) * 0.2
            bright = (torch.rand(batch_size, 1, 1, 1, generator=g) * 2 - 1) * 0.1
            x = (x * contrast + bright).clamp(-1, 1)
            x = align_to_template(x, _jittered_landmarks(base, batch_size, g, size), hw)
            flip = torch.rand(batch_size, generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
            x = x.contiguous(memory_format=torch.channels_last)
        e = torch.nn.functional.normalize(net(x), dim=1)
        cos = e @ torch.nn.functional.normalize(head, dim=1).T
        y = labels[idx]
        logits = scale * (cos - margin * torch.nn.functional.one_hot(y, len(names)))
        loss_cls = torch.nn.functional.cross_entropy(logits, y)
        d = has_desc[idx]
        loss_kd = (1 - (e[d] * desc[idx][d]).sum(1)).mean() if d.any() else torch.zeros(())
        loss = loss_cls + distill_weight * loss_kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step, seen = step + 1, seen + batch_size
        if step % 50 == 0:
            acc = float((cos.argmax(1) == y).float().mean())
            log(f"step {step} {elapsed / 60:.1f} min  cls {loss_cls.item():.3f} kd {loss_kd.item():.3f} acc {acc:.2f}")
    wall = time.time() - start
    student.eval()
    summary = {"steps": step, "images_seen": seen, "wall_time_s": round(wall, 1), "batch_size": batch_size,
               "train_faces": n, "train_identities": len(names), "faces_with_dlib_target": int(has_desc.sum()),
               "loss": f"cosface(s={scale:g},m={margin:g}) + {distill_weight:g}*(1-cos to dlib)"}
    save_checkpoint(student, out, dtype=torch.float16, metadata=summary)
    log(f"saved {out}: {summary}")
    return summary


if __name__ == "__main__":  # python -m unmasked.training.identity_distill cache|train ...
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["cache", "train"])
    ap.add_argument("--roots", nargs="+", default=["../shared/data/faces/celeba_wild256",
                                                   "../shared/data/faces/celeba_align"])
    ap.add_argument("--cache", default="/work/cache/face_identity")
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--out", default="unmasked/weights/face_identity.safetensors")
    args = ap.parse_args()
    if args.command == "cache":
        build_cache(args.roots, args.cache, time_budget_s=args.minutes * 60)
    else:
        torch.set_num_threads(1)  # the machine is shared; one thread per job scales better here
        faces = training_faces(args.roots, args.cache)
        try:  # dlib targets for the training faces that have them (held-out identities never do here)
            cache = load_cache(args.cache)
            where = {k: i for i, k in enumerate(cache.keys) if cache.split[i] == "train"}
            faces["descriptor"] = np.full((len(faces["keys"]), 128), np.nan, np.float32)
            for j, k in enumerate(faces["keys"]):
                if str(k) in where:
                    faces["descriptor"][j] = cache.descriptor[where[str(k)]]
        except FileNotFoundError:
            pass
        train_student(faces, args.out, minutes=args.minutes)
