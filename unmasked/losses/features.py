"""Frozen VGG-19 feature extractor (up to relu3_1) for perceptual and style losses.

The weights are the "normalised" VGG-19 of Gatys et al. (ImageNet VGG-19 of Simonyan &
Zisserman with each filter rescaled to unit mean activation), in the layout of
LinearStyleTransfer's ``encoder3``. They are supplied locally by the caller
(``../shared/weights/vgg19_relu3_1.pth``, described in ``vgg19_relu3_1.md``); this module
never downloads anything, and the weights are never part of the repository.

Graph: ``conv1`` (1x1, RGB [0, 1] -> Caffe BGR*255 - mean) -> [ReflectionPad(1), conv2,
ReLU] (relu1_1) -> [pad, conv3, ReLU] (relu1_2) -> MaxPool2 -> conv4/ReLU (relu2_1) ->
conv5/ReLU (relu2_2) -> MaxPool2 -> conv6/ReLU (relu3_1).

PConv (Liu et al., ECCV 2018) uses VGG-16 pool1, pool2, pool3; relu1_2, relu2_2 and
relu3_1 here are the nearest equivalent (the default ``layers``). Shapes for an
(N, 3, H, W) input: relu1_x (N, 64, H, W), relu2_x (N, 128, H/2, W/2),
relu3_1 (N, 256, H/4, W/4).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1")
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_1")


def model_range_to_unit(image: torch.Tensor) -> torch.Tensor:
    """Images in the library's range [-1, 1] -> the [0, 1] range the VGG expects."""
    return (image + 1.0) * 0.5


class VGG19Relu31(nn.Module):
    """Frozen VGG-19 up to relu3_1 with reflection padding; always in eval mode.

    ``forward(x)``: ``x`` (N, 3, H, W) RGB in **[0, 1]** (use :func:`model_range_to_unit`
    for library images); returns ``{name: feature map}`` for each name in ``layers``.
    """

    def __init__(self, layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in LAYERS]
        if unknown or not layers:
            raise ValueError(f"layers must be a non-empty subset of {LAYERS}, got {tuple(layers)}")
        self.layers = tuple(layers)
        self._last = max(LAYERS.index(name) for name in self.layers)
        self.conv1 = nn.Conv2d(3, 3, 1)
        self.conv2 = nn.Conv2d(3, 64, 3)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.conv4 = nn.Conv2d(64, 128, 3)
        self.conv5 = nn.Conv2d(128, 128, 3)
        self.conv6 = nn.Conv2d(128, 256, 3)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike, layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS) -> VGG19Relu31:
        """Load the weights at ``path`` (a ``torch.save`` state dict of 12 tensors), strictly.

        ``weights_only=True`` refuses anything but tensors and plain containers, so the
        file cannot run code when it is read.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VGG weights not found: {path} (see ../shared/weights/vgg19_relu3_1.md)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(layers)
        model.load_state_dict(state, strict=True)
        model.requires_grad_(False)
        return model.eval()

    def train(self, mode: bool = True) -> VGG19Relu31:
        # a frozen feature network: stays in eval mode inside a training module
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images (N, 3, H, W) in [0, 1], got {tuple(x.shape)}")
        out: dict[str, torch.Tensor] = {}
        h = self.conv1(x)
        convs = (self.conv2, self.conv3, self.conv4, self.conv5, self.conv6)
        for i, (name, conv) in enumerate(zip(LAYERS, convs, strict=True)):
            if name in ("relu2_1", "relu3_1"):
                h = F.max_pool2d(h, 2)
            h = F.relu(conv(F.pad(h, (1, 1, 1, 1), mode="reflect")))
            if name in self.layers:
                out[name] = h
            if i == self._last:
                break
        return out
