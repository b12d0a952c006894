"""Gated convolution and gated up-sampling ("deconvolution").

Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated Convolution",
ICCV 2019, Sec. 3.1:

    Gating  = conv_g(I)
    Feature = conv_f(I)
    O       = phi(Feature) * sigmoid(Gating)

Both convolutions are computed by one ``nn.Conv2d`` producing 2 x ``out_channels``
channels that are split into feature and gate (as the authors' code does). ``phi`` is ELU
by default. The up-sampling variant is nearest-neighbour x2 followed by a gated 3x3
convolution (the paper's ``gen_deconv``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the spatial size for stride 1 (odd kernels)."""
    return dilation * (kernel_size - 1) // 2


class GatedConv2d(nn.Module):
    """``ELU(feature) * sigmoid(gate)`` from one convolution with 2 x ``out_channels`` outputs.

    (N, C_in, H, W) -> (N, C_out, H / stride, W / stride) with "same" padding.
    ``activation`` defaults to ELU; pass ``nn.Identity()`` for a linear (still gated) feature.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: nn.Module | None = None,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, dilation),
            dilation=dilation,
            padding_mode=padding_mode,
        )
        self.activation = nn.ELU() if activation is None else activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature, gate = self.conv(x).split(self.out_channels, dim=1)
        return self.activation(feature) * torch.sigmoid(gate)


class GatedUpConv2d(nn.Module):
    """Nearest x2 up-sampling then :class:`GatedConv2d` (the paper's gated "deconvolution")."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, kernel_size, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
