"""Contextual attention: fill hole features by copying from matching background patches.

Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual Attention",
CVPR 2018, Sec. 4.1, as used in the refinement network of DeepFill v2 (ICCV 2019):

1. Foreground ``f`` and background ``b`` are down-sampled by ``rate`` (2); 3x3 patches of
   the down-sampled background are the convolution filters ("keys"), L2-normalised, so
   the score of every foreground location against every background patch is a cosine
   similarity.
2. Attention propagation ("fusion"): scores are summed along the diagonal of a 3x3
   neighbourhood in (foreground, background) space, so coherent neighbouring matches
   reinforce each other.
3. Only background patches that lie entirely outside the hole are attended; a softmax
   with scale 10 turns scores into weights.
4. The output is reconstructed from 2*rate x 2*rate raw (full-resolution) background
   patches with a transposed convolution of stride ``rate`` and divided by the overlap (4).

Three deliberate departures from the authors' TensorFlow code, all corrections:

* **each sample of a batch uses its own mask**; the reference code takes the validity of
  background patches from the first sample's mask for the whole batch;
* masked-out patches get a score of -1e4 before the softmax instead of 0, so the weights
  over valid patches sum to one (the reference zeroes invalid scores, softmaxes, then
  zeroes the weights again, leaving weights that sum to less than one);
* the fusion sums over a true 3x3 diagonal neighbourhood with zero padding, where the
  reference's flattening lets the horizontal pass wrap around from one row to the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _shift_diagonal(scores: torch.Tensor, axis_f: int, axis_b: int) -> torch.Tensor:
    """sum over d in {-1, 0, 1} of scores shifted by d along both axis_f and axis_b (zero filled)."""
    padded = F.pad(scores, _pad_spec(scores.ndim, (axis_f, axis_b)))
    size_f, size_b = scores.shape[axis_f], scores.shape[axis_b]
    out = 0
    for d in (0, 1, 2):
        out = out + padded.narrow(axis_f, d, size_f).narrow(axis_b, d, size_b)
    return out


def _pad_spec(ndim: int, axes: tuple[int, ...]) -> list[int]:
    spec = [0] * (2 * ndim)
    for axis in axes:
        k = ndim - 1 - (axis % ndim)  # F.pad lists the last dimension first
        spec[2 * k] = spec[2 * k + 1] = 1
    return spec


class ContextualAttention(nn.Module):
    """Contextual attention layer (no learned parameters).

    ``forward(foreground, background, mask)``: ``foreground`` (N, C, H, W), ``background``
    (N, C, Hb, Wb), ``mask`` (N, 1, h, w) with 1 = hole in the background, at any
    resolution (resized to the background's). H, W, Hb, Wb must be multiples of ``rate``.
    Returns (N, C, H, W).
    """

    def __init__(self, patch_size: int = 3, rate: int = 2, fuse_size: int = 3, softmax_scale: float = 10.0, fuse: bool = True):
        super().__init__()
        if rate < 2 or rate % 2:
            raise ValueError(f"rate must be an even number >= 2, got {rate}")
        if patch_size % 2 == 0:
            raise ValueError("patch_size must be odd")
        if fuse and fuse_size != 3:
            raise ValueError("only fuse_size=3 is implemented (as in the paper)")
        self.patch_size = patch_size
        self.rate = rate
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.last_attention: torch.Tensor | None = None  # (N, Lb, H/rate, W/rate), for inspection

    def forward(self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, c, h, w = foreground.shape
        _, _, hb, wb = background.shape
        r, k = self.rate, self.patch_size
        if h % r or w % r or hb % r or wb % r:
            raise ValueError(f"feature sizes must be multiples of rate={r}, got {h}x{w} and {hb}x{wb}")
        if mask.shape[0] != n or mask.shape[1] != 1:
            raise ValueError(f"mask must be (N, 1, h, w) with N={n}, got {tuple(mask.shape)}")

        # raw 2r x 2r background patches at full resolution, one per down-sampled location
        raw = F.unfold(background, kernel_size=2 * r, stride=r, padding=r // 2)  # (N, C*4r^2, Lb)
        n_patches = raw.shape[-1]
        raw = raw.transpose(1, 2).reshape(n * n_patches, c, 2 * r, 2 * r)

        f = F.interpolate(foreground, scale_factor=1 / r, mode="nearest")
        b = F.interpolate(background, scale_factor=1 / r, mode="nearest")
        hf, wf = f.shape[-2:]
        hs, ws = b.shape[-2:]

        # a down-sampled cell is a hole if any pixel under it is; a patch is usable only if
        # no cell of its k x k window is a hole (each sample with its own mask)
        m = F.interpolate(mask.to(b.dtype), size=(hs * r, ws * r), mode="nearest")
        m = F.max_pool2d(m, kernel_size=r)
        m = F.max_pool2d(m, kernel_size=k, stride=1, padding=k // 2)
        valid = (m == 0).reshape(n, n_patches)  # (N, Lb)

        # cosine similarity of every foreground location with every background patch
        keys = F.unfold(b, kernel_size=k, padding=k // 2)  # (N, C*k*k, Lb)
        keys = keys / keys.norm(dim=1, keepdim=True).clamp(min=1e-4)
        keys = keys.transpose(1, 2).reshape(n * n_patches, c, k, k)
        scores = F.conv2d(f.reshape(1, n * c, hf, wf), keys, padding=k // 2, groups=n)
        scores = scores.reshape(n, hs, ws, hf, wf)

        if self.fuse:  # propagate along x, then along y: a 3x3 diagonal neighbourhood
            scores = _shift_diagonal(scores, axis_f=4, axis_b=2)
            scores = _shift_diagonal(scores, axis_f=3, axis_b=1)

        scores = scores.reshape(n, n_patches, hf, wf) * self.softmax_scale
        valid_b = valid[:, :, None, None]
        # a finite fill keeps softmax free of NaN when a sample has no valid patch at all;
        # multiplying by the validity afterwards then leaves that sample's output at zero
        scores = scores.masked_fill(~valid_b, -1e4)
        attention = torch.softmax(scores, dim=1) * valid_b
        self.last_attention = attention.detach()

        # weighted sum of raw patches; every output pixel is covered by (2r/r)^2 = 4 patches
        out = F.conv_transpose2d(attention.reshape(1, n * n_patches, hf, wf), raw, stride=r, padding=r // 2, groups=n)
        return out.reshape(n, c, h, w) / 4.0
