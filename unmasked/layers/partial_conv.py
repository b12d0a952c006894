"""Partial convolution with mask update.

Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018, Eq. (1)-(2):

    x' = W^T (X * M) * sum(1) / sum(M) + b   if sum(M) > 0
    x' = 0                                  otherwise
    m' = 1 if sum(M) > 0 else 0

where M is the **valid** mask (1 = known pixel) of the window under the kernel and sum(1)
is the number of elements in that window. Note the paper's mask convention (1 = valid) is
the opposite of the rest of unmasked (1 = hole); this layer therefore takes a ``valid``
mask, and the partial-conv model flips the hole mask once at its input.

Single-channel masks (N, 1, H, W) count valid pixels over the kernel's spatial window
(sum(1) = k_h * k_w) and apply to every input channel. Multi-channel masks
(N, C_in, H, W) count over channels too (sum(1) = C_in * k_h * k_w), as in NVIDIA's
reference implementation, and the updated mask then has C_out identical channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` restricted to valid pixels, re-normalised, with mask update.

    ``forward(x, valid)`` takes ``x`` (N, C_in, H, W) and ``valid`` (N, 1, H, W), or
    (N, C_in, H, W) with ``multi_channel=True``, values in {0, 1}, 1 = valid. Returns
    ``(y, new_valid)`` with ``y`` (N, C_out, H', W') and ``new_valid`` (N, 1, H', W')
    (or (N, C_out, H', W') for multi-channel masks).
    """

    def __init__(self, *args, multi_channel: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError("PartialConv2d supports groups=1 only")
        if self.padding_mode != "zeros":
            raise ValueError("PartialConv2d needs zero padding: padded pixels count as holes")
        self.multi_channel = multi_channel
        kh, kw = self.kernel_size
        self.window_size = (self.in_channels if multi_channel else 1) * kh * kw
        mask_in = self.in_channels if multi_channel else 1
        self.register_buffer("_ones", torch.ones(1, mask_in, kh, kw), persistent=False)

    def _count_valid(self, valid: torch.Tensor) -> torch.Tensor:
        """sum(M) over each output window, (N, 1, H', W')."""
        return F.conv2d(valid, self._ones.to(valid.dtype), None, self.stride, self.padding, self.dilation)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        expected = self.in_channels if self.multi_channel else 1
        if valid.shape[1] != expected or valid.shape[-2:] != x.shape[-2:] or valid.shape[0] != x.shape[0]:
            raise ValueError(f"valid mask must have shape (N, {expected}, H, W) matching x, got {tuple(valid.shape)}")
        with torch.no_grad():
            count = self._count_valid(valid)
            new_valid = (count > 0).to(x.dtype)
            # sum(1)/sum(M) where the window holds a valid pixel, 0 elsewhere
            ratio = self.window_size / count.clamp(min=1.0) * new_valid
        raw = F.conv2d(x * valid, self.weight, None, self.stride, self.padding, self.dilation)
        out = raw * ratio
        if self.bias is not None:
            out = (out + self.bias.view(1, -1, 1, 1)) * new_valid
        if self.multi_channel:
            new_valid = new_valid.expand(-1, self.out_channels, -1, -1)
        return out, new_valid
