"""Face verification scores for identity embedders: ROC-AUC on fixed genuine / impostor pairs.

The protocol (as LFW-style verification, Huang et al. 2007, on held-out identities): images of
identities never trained on (:func:`unmasked.data.datasets.identity_split` == "val"); genuine
pairs are all pairs of images of one identity (at most ``max_genuine_per_identity`` each, a
seeded subset), impostor pairs an equal number of seeded random pairs of different
identities. Every embedder is scored on the *same* pairs by the cosine similarity of its
unit embeddings; the score is the area under the ROC curve (Mann-Whitney U / (P N), ties
counted 1/2), plus TPR at 1 % false accepts and the threshold giving it.

The same function scores the Two-Face output ("identity similarity to another photo of the
same person, measured with dlib's descriptor"): :func:`identity_similarity`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from unmasked.conventions import image_to_tensor
from unmasked.data.face_cache import build_cache, load_cache
from unmasked.hub import load_embedder
from unmasked.models.face_identity import load_mobilefacenet


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Exact ROC-AUC: P(score of a random positive > score of a random negative), ties count 1/2."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be 1-d of the same length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average rank (1-based) within each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + 1 + b) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def threshold_at_far(scores: Sequence[float], labels: Sequence[bool], far: float = 0.01) -> tuple[float, float]:
    """(threshold, TPR): the lowest threshold accepting at most ``far`` of the negatives (score > threshold)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    neg = np.sort(s[~y])[::-1]
    k = int(np.floor(far * len(neg)))  # this many negatives may pass
    thr = float(neg[k]) if k < len(neg) else float(neg[-1]) - 1e-9
    return thr, float((s[y] > thr).mean())


def verification_pairs(identities: Sequence[str], *, max_genuine_per_identity: int = 28,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed pairs over images labelled ``identities`` (N,): ``pairs`` int (P, 2), ``labels`` bool (P,).

    Genuine: every pair within an identity (seeded subset of at most ``max_genuine_per_identity``);
    impostor: as many distinct random cross-identity pairs, seeded.
    """
    ids = np.asarray(identities)
    rng = np.random.default_rng(seed)
    genuine = []
    for ident in sorted(set(ids.tolist())):
        idx = np.flatnonzero(ids == ident)
        pairs = [(int(a), int(b)) for i, a in enumerate(idx) for b in idx[i + 1 :]]
        if len(pairs) > max_genuine_per_identity:
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), max_genuine_per_identity, replace=False))]
        genuine.extend(pairs)
    if not genuine:
        raise ValueError("no identity has two images: no genuine pairs")
    impostor: set[tuple[int, int]] = set()
    while len(impostor) < len(genuine):
        a, b = (int(v) for v in rng.integers(len(ids), size=2))
        if ids[a] != ids[b]:
            impostor.add((min(a, b), max(a, b)))
    pairs = np.array(genuine + sorted(impostor), dtype=np.int64)
    labels = np.r_[np.ones(len(genuine), bool), np.zeros(len(impostor), bool)]
    return pairs, labels


@dataclass
class VerificationResult:
    """One embedder's scores on the pairs."""

    name: str
    roc_auc: float
    genuine_cos: float
    impostor_cos: float
    tpr_at_far1: float
    threshold_far1: float


def score_pairs(name: str, embeddings: np.ndarray | torch.Tensor, pairs: np.ndarray, labels: np.ndarray) -> VerificationResult:
    """Cosine-similarity verification scores of (N, D) embeddings (normalised here) on ``pairs``."""
    e = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    e = torch.nn.functional.normalize(e, dim=1).numpy()
    cos = (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1)
    thr, tpr = threshold_at_far(cos, labels, 0.01)
    return VerificationResult(name, roc_auc(cos, labels), float(cos[labels].mean()), float(cos[~labels].mean()), tpr, thr)


def identity_similarity(embedder, a: torch.Tensor, b: torch.Tensor, landmarks_a=None, landmarks_b=None) -> torch.Tensor:
    """(N,) cosine similarity of the identities in two batches of FFHQ-aligned crops (N, 3, S, S) in [-1, 1].

    ``embedder``: any ``IdentityEmbedder`` -- for evaluation use ``DlibEmbedder()``, a network
    never used as a training loss.
    """
    with torch.no_grad():
        ea, eb = embedder.embed(a, landmarks_a), embedder.embed(b, landmarks_b)
    return torch.nn.functional.cosine_similarity(ea.double(), eb.double(), dim=1)


@torch.no_grad()
def _embed_all(embedder, crops: np.ndarray, landmarks: np.ndarray | None, batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(crops), batch):
        lm = None if landmarks is None else torch.from_numpy(landmarks[i : i + batch])
        out.append(embedder.embed(image_to_tensor(crops[i : i + batch]), lm).numpy())
    return np.concatenate(out)


def evaluate_identity(roots: Sequence[str | os.PathLike], cache_dir: str | os.PathLike, *,
                      embedders: Sequence[str] = ("face_identity",), mobilefacenet: str | os.PathLike | None = None,
                      per_identity: int = 8, max_genuine_per_identity: int = 28, val_fraction: float = 0.2,
                      seed: int = 0, log=print) -> dict:
    """Verification on the held-out identities of ``roots`` for dlib, MobileFaceNet (if its weights
    are given) and ``embedders`` (shipped names or checkpoint paths), all on the same pairs.

    dlib descriptors, FFHQ-aligned 128 px crops and their landmarks are computed once and kept in
    ``cache_dir`` (:func:`unmasked.data.face_cache.build_cache`). The torch embedders
    are scored with the per-image landmarks and, as "(mean warp)", with the fixed warp of the
    mean FFHQ face. Returns ``{"results": [VerificationResult as dict], "pairs", "genuine",
    "impostor", "images", "identities"}``.
    """
    build_cache(roots, cache_dir, val_fraction=val_fraction, val_per_identity=per_identity, splits=("val",), log=log)
    cache = load_cache(cache_dir)
    roots_names = {Path(r).name for r in roots}
    keep = np.flatnonzero((cache.split == "val") & np.isin([k.split("/")[0] for k in cache.keys], list(roots_names)))
    # at most per_identity images per identity (the cache may hold more from an earlier run)
    seen: dict[str, int] = {}
    chosen = []
    for i in keep:
        ident = str(cache.identity[i])
        if seen.get(ident, 0) < per_identity:
            seen[ident] = seen.get(ident, 0) + 1
            chosen.append(i)
    val = cache.subset(np.array(chosen))
    pairs, labels = verification_pairs(val.identity, max_genuine_per_identity=max_genuine_per_identity, seed=seed)
    results = [score_pairs("dlib (ResNet, 150 px chip)", val.descriptor, pairs, labels)]
    torch_models = []
    if mobilefacenet is not None:
        torch_models.append(("mobilefacenet (research weights)", load_mobilefacenet(mobilefacenet)))
    torch_models += [(str(spec), load_embedder(spec)) for spec in embedders]
    for name, emb in torch_models:
        results.append(score_pairs(name, _embed_all(emb, val.crops, val.landmarks), pairs, labels))
        results.append(score_pairs(f"{name} (mean warp)", _embed_all(emb, val.crops, None), pairs, labels))
    return {"results": [asdict(r) for r in results], "pairs": len(pairs), "genuine": int(labels.sum()),
            "impostor": int((~labels).sum()), "images": len(val), "identities": len(set(val.identity.tolist()))}


def format_table(report: dict) -> str:
    """Markdown table of :func:`evaluate_identity`'s results."""
    lines = [f"Held-out identities: {report['identities']}, images: {report['images']}, pairs: {report['genuine']} "
             f"genuine + {report['impostor']} impostor", "",
             "| embedder | ROC-AUC | genuine cos | impostor cos | TPR @ FAR 1 % | threshold @ FAR 1 % |",
             "|---|--:|--:|--:|--:|--:|"]
    for r in report["results"]:
        lines.append(f"| {r['name']} | {r['roc_auc']:.3f} | {r['genuine_cos']:.3f} | {r['impostor_cos']:.3f} "
                     f"| {r['tpr_at_far1']:.3f} | {r['threshold_far1']:.3f} |")
    return "\n".join(lines)
