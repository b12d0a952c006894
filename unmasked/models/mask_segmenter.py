"""A light U-Net that segments the worn face mask on an FFHQ-aligned face crop.

Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015: an encoder of ``levels`` stages (two 3x3 convolutions each, 2x2 max-pooling between
stages, channels doubling from ``base_channels``) and a decoder that upsamples, concatenates the
encoder's features of the same scale and applies two 3x3 convolutions again; a 1x1 convolution
gives one logit per pixel. Changes from the paper, for a 2-core CPU and a one-class task:

* ``same`` padding (output size = input size, no cropping of skip connections);
* BatchNorm after every 3x3 convolution (trains fast at small batches of aligned faces);
* bilinear x2 upsampling followed by the decoder's convolutions instead of a transposed
  convolution (no checkerboard artefacts, fewer parameters);
* widths: 16, 32, 64, 128 for the default ``base_channels=16, levels=4`` (0.47 M parameters,
  about 0.4 GFLOP per 128 x 128 face).

This is not an inpainting model: ``forward(image)`` takes only the aligned face and returns
logits, so it declares ``task = "segment"`` and the registry keeps it out of the inpainting list
(``list_models()`` / ``unmasked fill --model``). ``create_model("mask_segmenter", ...)``,
``save_checkpoint`` and ``load_checkpoint`` work as for every model. Training:
:mod:`unmasked.training.segmenter`; shipped weights: ``unmasked/weights/mask_segmenter.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.models.base import SegmentModel
from unmasked.registry import register_model


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


@register_model("mask_segmenter")
class MaskSegmenter(SegmentModel):
    """Light U-Net: aligned face (N, 3, S, S) in [-1, 1] -> worn-mask logits (N, 1, S, S).

    ``base_channels`` widths double over ``levels`` encoder stages; ``working_size`` is the
    side of the aligned crop the weights were trained on (the pipeline aligns faces at it).
    """

    def __init__(self, base_channels: int = 16, levels: int = 4, working_size: int = 128) -> None:
        super().__init__()
        if base_channels < 1 or levels < 2:
            raise ValueError(f"need base_channels >= 1 and levels >= 2, got {base_channels}, {levels}")
        self.multiple = 2 ** (levels - 1)
        if working_size % self.multiple:
            raise ValueError(f"working_size {working_size} must be a multiple of {self.multiple} for {levels} levels")
        self.working_size = working_size
        widths = [base_channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList(_double_conv(cin, cout) for cin, cout in zip([3, *widths[:-1]], widths, strict=True))
        self.up = nn.ModuleList(_double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (N, 3, H, W) in [-1, 1], H and W multiples of :attr:`multiple` -> logits (N, 1, H, W)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an image batch (N, 3, H, W), got shape {tuple(image.shape)}")
        if image.shape[2] % self.multiple or image.shape[3] % self.multiple:
            raise ValueError(f"H and W must be multiples of {self.multiple}, got {tuple(image.shape[2:])}")
        skips = []
        x = image
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Mask probabilities (N, 1, H, W) in [0, 1] for aligned faces at any size (resized to the
        working size and back)."""
        h, w = image.shape[2:]
        s = self.working_size
        x = image if (h, w) == (s, s) else F.interpolate(image, size=(s, s), mode="bilinear", align_corners=False,
                                                         antialias=True)
        prob = torch.sigmoid(self(x.contiguous(memory_format=torch.channels_last)))
        if (h, w) != (s, s):
            prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
        return prob
