"""Does a reference photo make the fill the right person? (Two-Face evaluation.)

On held-out identities of an ``<identity>/<image>`` folder, each *target* face gets a hole
and is filled by every model; reference-guided models get a *reference* photo of the same
person, and are also run without it. Besides PSNR / SSIM / L1 (composited, whole crop), each
fill's **identity** is measured against a *third* photo of that person (the *probe*, never
shown to any model) with dlib's face descriptor, a network the Two-Face model is not trained
with (its identity loss uses MobileFaceNet): the cosine of the unit descriptors, and dlib's own
measure, the Euclidean **distance** of the raw descriptors with the share of fills under dlib's
same-person threshold of 0.6. The ground truth's scores against the probe are the ceiling.
Scores are reported per hole-ratio bucket, with the **realism** of each fill (the classifier
two-sample test of :mod:`unmasked.evaluation.realism`, two-fold by person) over all targets.
Holes: ``bucketed`` spreads the 12 (ratio, border) cells, ``large`` only the ratios (0.3, 0.6]
(large holes over most of the face), ``face`` is a synthetic worn mask.

    python -m unmasked.evaluation.reference --model runs/twoface_faces-128/generator.safetensors \\
        --model deepfill_v2_faces128 --model telea --images ../shared/data/faces/celeba_wild256
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from unmasked.api import load_model
from unmasked.conventions import composite, image_to_tensor, tensor_to_image
from unmasked.data.datasets import IdentityFolderDataset
from unmasked.evaluation.realism import c2st, hole_patch
from unmasked.evaluation.run import face_masks_for_images, generated_masks
from unmasked.faces.descriptor import crop_landmarks, dlib_descriptor
from unmasked.masks.stats import bucket_label, bucket_of
from unmasked.metrics import bootstrap_mean_ci, score_image

#: dlib's same-person threshold on the Euclidean distance of its raw descriptors
DLIB_SAME_PERSON = 0.6
#: hole-ratio buckets (indices into HOLE_RATIO_BUCKETS) of the "large" holes: (0.3, 0.6]
LARGE_BUCKETS = (3, 4, 5)


def identity_triplets(root: str | Path, size: int, limit: int, split: str = "val", val_fraction: float = 0.2,
                      offset: int = 0):
    """uint8 (N, S, S, 3) targets, references, probes: three different photos of one held-out person each.

    Triplets are spread over the identities with at least three photos (target i of an
    identity uses photos i, i+1, i+2 of it, cyclically), at most ``limit`` of them, starting at
    triplet ``offset`` (a later slice is a fresh test set for a choice made on an earlier one).
    """
    ds = IdentityFolderDataset(root, size, split=split, val_fraction=val_fraction, min_images=3)
    triplets = []
    rounds = max(len(g) for g in ds.groups.values())
    for r in range(rounds):  # round-robin over identities, so a limit keeps many people
        for members in ds.groups.values():
            if r < len(members):
                triplets.append((members[r], members[(r + 1) % len(members)], members[(r + 2) % len(members)]))
    triplets = triplets[offset : offset + limit]
    if not triplets:
        raise ValueError(f"no held-out triplets from offset {offset}")
    pick = lambda k: np.stack([ds.pixels(t[k]) for t in triplets])  # noqa: E731
    names = [ds.identities[t[0]] for t in triplets]
    return pick(0), pick(1), pick(2), names


def holes_for(targets: np.ndarray, kind: str, seed: int = 0) -> list[np.ndarray]:
    """One hole per target: "bucketed" spreads the 12 (ratio, border) cells over the targets,
    "large" only the 6 cells of ratio (0.3, 0.6]; "face": a worn mask."""
    n, size = len(targets), targets.shape[1]
    if kind == "face":
        return [m.hole for m in face_masks_for_images(targets, seed=seed)]
    if kind not in ("bucketed", "large"):
        raise ValueError(f"unknown hole kind {kind!r}: bucketed, large or face")
    masks = generated_masks("bucketed", size, per_cell=-(-n // (12 if kind == "bucketed" else 6)), seed=seed)
    if kind == "large":
        masks = [m for m in masks if bucket_of(float(m.hole.mean())) in LARGE_BUCKETS]
    order = np.random.default_rng(seed).permutation(len(masks))[:n]
    return [masks[i].hole for i in order]


@torch.no_grad()
def fill_all(model, targets: np.ndarray, holes: list[np.ndarray], references: np.ndarray | None,
             batch: int = 16) -> np.ndarray:
    """Composited uint8 fills of every target (with the references when given)."""
    out = []
    for i in range(0, len(targets), batch):
        x = image_to_tensor(targets[i : i + batch])
        m = torch.from_numpy(np.stack(holes[i : i + batch])).float()[:, None]
        extra = {} if references is None else {"reference": image_to_tensor(references[i : i + batch])}
        pred = model(x * (1 - m), m, **extra).image
        out.append(tensor_to_image(composite(pred, x, m)))
    return np.concatenate(out)


def evaluate_reference(models: list[str], images: str | Path, *, size: int = 128, limit: int = 120, offset: int = 0,
                       mask_kind: str = "bucketed", seed: int = 0) -> dict:
    """Scores of every model (and, for reference-guided ones, with and without the reference)."""
    targets, references, probes, names = identity_triplets(images, size, limit, offset=offset)
    holes = holes_for(targets, mask_kind, seed)
    probe_raw = raw_descriptors(probes)
    probe_unit = probe_raw / np.linalg.norm(probe_raw, axis=1, keepdims=True)

    def identity(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = raw_descriptors(faces)
        return (d / np.linalg.norm(d, axis=1, keepdims=True) * probe_unit).sum(axis=1), np.linalg.norm(d - probe_raw, axis=1)

    variants: dict[str, np.ndarray] = {}
    for spec in models:
        model = load_model(spec).eval()
        label = Path(spec).stem if spec.endswith(".safetensors") else spec
        if model.uses_reference:
            variants[f"{label} + reference"] = fill_all(model, targets, holes, references)
            variants[f"{label}, no reference"] = fill_all(model, targets, holes, None)
        else:
            variants[label] = fill_all(model, targets, holes, None)
    buckets = [bucket_of(float(h.mean())) for h in holes]
    rows = []
    sims_of, dists_of, realism = {}, {}, {}
    real_patches = np.stack([hole_patch(t, h) for t, h in zip(targets, holes, strict=True)])
    for label, filled in {**variants, "ground truth (ceiling)": targets}.items():
        sims, dists = identity(filled)
        sims_of[label], dists_of[label] = sims, dists
        if label in variants:
            realism[label] = c2st(np.stack([hole_patch(f, h) for f, h in zip(filled, holes, strict=True)]),
                                  real_patches, names, seed=seed)
        scores = [score_image(f, t) for f, t in zip(filled, targets, strict=True)]
        groups = defaultdict(list)
        for i, b in enumerate(buckets):
            groups[b].append(i)
            groups["all"].append(i)
        for b, idx in sorted(groups.items(), key=lambda kv: (kv[0] == "all", str(kv[0]))):
            rows.append({"model": label, "bucket": b if b == "all" else bucket_label(b), "n": len(idx),
                         "psnr": float(np.mean([min(scores[i]["psnr"], 100.0) for i in idx])),
                         "ssim": float(np.mean([scores[i]["ssim"] for i in idx])),
                         "l1": float(np.mean([scores[i]["l1"] for i in idx])),
                         "identity": float(np.mean(sims[idx])),
                         "distance": float(np.mean(dists[idx])),
                         "same_person": float(np.mean(dists[idx] < DLIB_SAME_PERSON)),
                         **({"realism": realism[label]["accuracy"]} if b == "all" and label in realism else {})})
    gains = []
    for label in variants:
        if label.endswith(" + reference"):
            base = label[: -len(" + reference")] + ", no reference"
            gains.append({"model": label[: -len(" + reference")],
                          **paired_gain(sims_of[label], sims_of[base], sims_of["ground truth (ceiling)"], seed=seed),
                          "distance": paired_gain(-dists_of[label], -dists_of[base], -dists_of["ground truth (ceiling)"],
                                                  seed=seed)})
    return {"images": str(images), "people": len(set(names)), "targets": len(targets), "size": size,
            "holes": mask_kind, "identity_measure": "dlib descriptor cosine to a third photo of the person",
            "distance_measure": "Euclidean distance of dlib's raw descriptors to that photo (same person below 0.6)",
            "rows": rows, "reference_gain": gains}


def raw_descriptors(faces: np.ndarray) -> np.ndarray:
    """dlib's raw (N, 128) descriptors of aligned uint8 crops (N, S, S, 3), landmarks predicted per crop."""
    return np.stack([dlib_descriptor(f, crop_landmarks(f)) for f in faces])


def paired_gain(with_ref: np.ndarray, without: np.ndarray, ceiling: np.ndarray, *, seed: int = 0,
                resamples: int = 2000) -> dict:
    """Per-face identity gain of the reference (with - without): mean, a 95 % bootstrap
    interval over faces, the share of faces that gained, and the share of the gap to the
    ground truth's similarity that the reference closes."""
    diff = np.asarray(with_ref, np.float64) - np.asarray(without, np.float64)
    gap = float(np.mean(ceiling) - np.mean(without))
    return {"mean": float(diff.mean()), "ci95": list(bootstrap_mean_ci(diff, seed=seed, resamples=resamples)),
            "faces_gaining": float((diff > 0).mean()), "gap_closed": float(diff.mean() / gap) if gap > 0 else float("nan")}


def format_table(result: dict) -> str:
    """Markdown: PSNR / SSIM / identity per model and bucket."""
    lines = [f"{result['targets']} held-out faces of {result['people']} people, {result['holes']} holes, "
             f"{result['size']}²; identity = {result['identity_measure']}", "",
             f"(cosine ↑), distance = {result.get('distance_measure', '-')} (↓; share under 0.6 ↑); realism = "
             "classifier two-sample accuracy on the hole's patch (0.5 = indistinguishable from the photos, ↓)", "",
             "| model | hole ratio | n | PSNR dB ↑ | SSIM ↑ | identity ↑ | distance ↓ | under 0.6 ↑ | realism ↓ |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in result["rows"]:
        extra = (f" {r['distance']:.3f} | {100 * r['same_person']:.0f} % | "
                 + (f"{r['realism']:.3f} |" if "realism" in r else "– |")) if "distance" in r else " – | – | – |"
        lines.append(f"| {r['model']} | {r['bucket']} | {r['n']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['identity']:.4f} |{extra}")
    for g in result.get("reference_gain", []):
        lo, hi = g["ci95"]
        lines += ["", f"{g['model']}: the reference changes identity by {g['mean']:+.4f} per face "
                      f"(95 % bootstrap interval {lo:+.4f} .. {hi:+.4f}); {100 * g['faces_gaining']:.0f} % of faces gain; "
                      f"{100 * g['gap_closed']:.0f} % of the gap to the ground truth closed"]
        if "distance" in g:
            d = g["distance"]
            lines.append(f"{g['model']}: the reference changes the dlib distance to the probe by {-d['mean']:+.4f} "
                         f"per face (95 % interval {-d['ci95'][1]:+.4f} .. {-d['ci95'][0]:+.4f}); "
                         f"{100 * d['faces_gaining']:.0f} % of faces move closer")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Identity similarity of fills with and without a reference photo.")
    ap.add_argument("--model", action="append", required=True, help="preset, baseline or checkpoint; repeat")
    ap.add_argument("--images", required=True, help="<identity>/<image> folder (its held-out split is used)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--offset", type=int, default=0, help="skip this many held-out triplets (a fresh test slice)")
    ap.add_argument("--mask-kind", choices=["bucketed", "large", "face"], default="bucketed",
                    help="holes: the 12 ratio/border cells, only ratios (0.3, 0.6], or a worn face mask")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    result = evaluate_reference(args.model, args.images, size=args.size, limit=args.limit, offset=args.offset,
                                mask_kind=args.mask_kind, seed=args.seed)
    print(format_table(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
