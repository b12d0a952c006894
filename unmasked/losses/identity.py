"""Identity loss: cosine distance between face embeddings (Two-Face's FaceNet term).

Two-Face (reference-guided face inpainting) keeps the filled face the reference's person by
penalising the distance between identity embeddings of the output and the reference, as
FaceNet (Schroff et al., CVPR 2015) embeddings are compared. Here the distance is
``1 - cos(a, b)`` (ArcFace-style embeddings live on the unit sphere): 0 for the same direction,
1 for orthogonal, 2 for opposite. Embeddings come from an ``IdentityEmbedder``
(:mod:`unmasked.models.face_identity`), e.g.::

    embedder = load_mobilefacenet("../shared/weights/mobilefacenet_arcface_casia.ckpt")  # frozen
    loss = identity_loss(embedder.embed(output, lm_out), embedder.embed(reference, lm_ref).detach())
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_loss(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``1 - cos(a, b)`` of (N, D) embeddings (normalised here): (N,) with ``reduction="none"``, else the mean."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"embeddings must both be (N, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    d = 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)
    if reduction == "none":
        return d
    if reduction == "mean":
        return d.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
