"""Spectral-normalised convolution for discriminators.

Miyato, Kataoka, Koyama, Yoshida, "Spectral Normalization for Generative Adversarial
Networks", ICLR 2018; used by the SN-PatchGAN discriminator of DeepFill v2 (Yu et al.,
ICCV 2019). The weight is divided by its largest singular value, estimated by power
iteration (``torch.nn.utils.parametrizations.spectral_norm``), which bounds the layer's
Lipschitz constant by one.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int | str = 0, **kwargs) -> nn.Conv2d:
    """An ``nn.Conv2d`` whose weight is spectrally normalised (one power iteration per step)."""
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, **kwargs))
