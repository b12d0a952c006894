"""Normalised Gaussian kernels, for fixed (parameter-free) blurs inside models and losses."""

from __future__ import annotations

import torch


def gaussian_1d(sigma: float) -> torch.Tensor:
    """float32 (K,) Gaussian of standard deviation ``sigma`` px, K = 2 * round(3 sigma) + 1 (at
    least 3), summing to 1."""
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """float32 (1, 1, K, K): :func:`gaussian_1d` in both directions, summing to 1."""
    k = gaussian_1d(sigma)
    return (k[:, None] * k[None, :])[None, None]
