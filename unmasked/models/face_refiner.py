"""A face refiner: the 128² face model's fill, repainted with detail at 256².

The coarse-to-fine design of DeepFill v2 (Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image
Inpainting with Gated Convolution", ICCV 2019, Sec. 3.3 and Fig. 3): a first network lays out the
hole's structure, a second one, fed the first one's result composited into the photo, paints
the detail; both are trained with a pixel-wise L1 reconstruction loss and the SN-PatchGAN hinge
loss (Sec. 3.2). Here the coarse stage is a trained, frozen face model at its own resolution
(the shipped ``pconv_unet_faces128`` by default, which draws the mouth and nose), run on the
image and hole shrunk by 2; its fill is upsampled bilinearly, composited into the full-resolution
photo, and a light refinement network at the full resolution adds a residual: the texture,
edges and grain that a 128² fill scaled up to a 256² face lacks.

Refinement network, sized for a 2-core CPU: the composited coarse fill and the mask are folded
into half resolution by a pixel unshuffle (space-to-depth, as in ESPCN: Shi et al., CVPR 2016),
so only the last convolution runs at the full resolution; a U-Net of plain 3x3 convolutions
(``channels`` at 1/2, x2 at 1/4) with ``blocks`` residual blocks of dilations 1, 2, 4, 8, ... at
1/4 and a skip connection; its features, upsampled bilinearly and concatenated with the
full-resolution coarse fill and mask, go through one 3x3 convolution that gives the RGB residual.
(A pixel shuffle of 12 channels as the output, tried first, painted 4-px vertical stripes under
the adversarial loss within 600 steps.) That last convolution is initialised to **zero**, so
before any training the refiner returns exactly the upsampled coarse fill. Plain rather than gated
convolutions (the paper's refinement network is gated): the hole is already filled when the
refiner sees it, and a gate would double the cost of every layer.

Only the refiner's tensors are this model's parameters (``state_dict`` and the checkpoint hold
them alone, ~0.3 M); the coarse model named by ``base`` (a shipped preset name or a
``.safetensors`` path) is loaded by :func:`unmasked.checkpoint.build_model` (this model never
loads weights itself), handed in as ``coarse_model`` and stays frozen in eval mode, so training
never changes its weights or its BatchNorm statistics.

``forward(image, mask)``: ``image`` (N, 3, H, W) in [-1, 1] with H, W multiples of
:attr:`multiple`, ``mask`` (N, 1, H, W), 1 = hole. Returns ``image`` (the refined fill, not
composited) and ``coarse`` (the coarse model's fill upsampled, composited into the photo).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.models.base import DeepFillOutput, InpaintModel
from unmasked.registry import register_model


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


@register_model("face_refiner", "Coarse face model + a 2x refinement network (DeepFill v2 coarse-to-fine, Yu et al. ICCV 2019)")
class FaceRefiner(InpaintModel):
    """Coarse face fill at ``working_size // 2``, refined at ``working_size`` (see module docstring)."""

    runtime_args = ("coarse_model",)
    builds_on = {"base": "coarse_model"}

    def __init__(self, base: str = "pconv_unet_faces128", channels: int = 32, blocks: int = 4,
                 working_size: int = 256, coarse_model: InpaintModel | None = None) -> None:
        super().__init__()
        if coarse_model is None:
            raise ValueError("face_refiner is built on a frozen coarse model: build it with "
                             "unmasked.checkpoint.build_model('face_refiner', base=...), or load a checkpoint")
        if coarse_model.uses_reference or coarse_model.task != "inpaint":
            raise ValueError(f"face_refiner: coarse model {base!r} must be a plain inpainting model")
        coarse = coarse_model
        # a plain attribute, not a submodule: the coarse weights are not this model's parameters
        self.__dict__["coarse_model"] = coarse
        self.multiple = max(8, 2 * int(getattr(coarse, "multiple", 1) or 1))
        if working_size % self.multiple:
            raise ValueError(f"working_size must be a multiple of {self.multiple}, got {working_size}")
        self.working_size = working_size
        c = channels
        act = nn.LeakyReLU(0.2)
        self.enc1 = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(16, c, 3, padding=1), act)
        self.enc2 = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), act)
        self.middle = nn.Sequential(*[_Residual(2 * c, 2 ** (i % 4)) for i in range(blocks)])
        self.dec1 = nn.Sequential(nn.Conv2d(3 * c, c, 3, padding=1), act)
        self.out = nn.Conv2d(c + 4, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def train(self, mode: bool = True) -> FaceRefiner:
        super().train(mode)
        self.coarse_model.eval()  # frozen: its BatchNorm statistics never move
        return self

    @torch.no_grad()
    def coarse_fill(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The coarse model's fill at half resolution, upsampled and composited: (N, 3, H, W)."""
        small_mask = (F.interpolate(mask, scale_factor=0.5, mode="area") > 0).float()
        small = F.interpolate(image * (1 - mask), scale_factor=0.5, mode="area", recompute_scale_factor=False)
        small = small * (1 - small_mask)
        coarse = self.coarse_model.to(image.device)(small, small_mask).image
        up = F.interpolate(coarse, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return up * mask + image * (1 - mask)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> DeepFillOutput:
        if reference is not None:
            raise ValueError("face_refiner takes no reference image")
        h, w = image.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"H and W must be multiples of {self.multiple}, got {h}x{w}; pad first")
        coarse = self.coarse_fill(image, mask)
        e1 = self.enc1(torch.cat([coarse, mask], 1))
        x = self.middle(self.enc2(e1))
        x = F.interpolate(x, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        x = self.dec1(torch.cat([x, e1], 1))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        refined = (coarse + self.out(torch.cat([x, coarse, mask], 1))).clamp(-1, 1)
        return DeepFillOutput(refined, coarse)
