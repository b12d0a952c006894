"""The Partial Convolutions U-Net.

Liu, Reda, Shih, Wang, Tao, Catanzaro, "Image Inpainting for Irregular Holes Using
Partial Convolutions", ECCV 2018, Sec. 3.3 and the supplementary material.

Encoder: ``depth`` partial convolutions with stride 2; kernel 7 for the first layer, 5 for
the next two, 3 for the rest; channels ``base_channels * 2**i`` capped at ``max_channels``
(paper: 64, 128, 256, 512, 512, ...); BatchNorm on every layer but the first; ReLU.

Decoder: at each level, nearest x2 upsampling of the features *and* of their valid mask,
concatenation with the encoder's skip features *and* the skip's valid mask, a 3x3
multi-channel partial convolution (so the concatenated mask is honoured channel by
channel), BatchNorm and LeakyReLU(0.2). The last layer concatenates the input image and
its mask, has no BatchNorm or activation, and outputs 3 channels.

Paper configurations: ``depth=7`` at 256x256, ``depth=8`` at 512x512, ``base_channels=64``,
``max_channels=512``. A small CPU variant::

    create_model("pconv_unet", base_channels=16, max_channels=128, depth=5, working_size=128)

Mask convention: unmasked masks are 1 = hole; the paper's partial convolutions use
1 = valid. The flip ``valid = 1 - mask`` happens once, at the top of :meth:`forward`.

Fine-tuning (paper Sec. 4.1): with ``freeze_encoder_bn=True`` the encoder's BatchNorm
layers stay in eval mode even under ``model.train()`` (running statistics are used and
never updated), while their affine weights still learn; the paper pairs this stage with a
learning rate of 5e-5 (the training loop's job, not the model's).

The bottleneck is (H / 2**depth) x (W / 2**depth): 1x1 for the paper's depth 7 at 128x128,
where train-mode BatchNorm needs a batch of at least 2.

Deviations from the paper, all deliberate:

* Output range: the paper's last layer is linear. unmasked images live in [-1, 1], so
  ``output_activation="tanh"`` (default) squashes the output; ``"clamp"`` keeps the
  paper's linear layer and clamps to [-1, 1] (no gradient beyond the range).
* Biases: the paper does not say; like NVIDIA-style reimplementations, convolutions
  followed by BatchNorm have no bias. The first encoder layer and the output layer (no
  BatchNorm) have one.
* Masks between decoder layers are kept as one channel and broadcast to the feature
  channels only when concatenated; this is the same mask the paper's multi-channel
  update produces (all output channels of a partial conv share one updated mask).
* BatchNorm statistics in train mode are taken over all positions, including those whose
  valid mask is 0 (their features are 0 whatever the hole content), as in the reference
  implementations.
* ``upsample_mode="bilinear"`` (default ``"nearest"``, the paper's) upsamples the decoder's
  features bilinearly; their masks are always upsampled nearest (they stay binary). It has no
  parameters, so trained weights take either. With nearest upsampling every coarse decoder
  feature is copied over a 2x2 block, and a loss that asks for texture (the style term) can be
  met early by sharpening those block edges: a fine-tune of the L1-trained face model with
  the style term painted an 8-px grid into large holes (measured).

Landmark guidance (``landmark_guide=True``; not in the paper): under a worn mask the mouth's place
is not in the surrounding pixels, so the network paints the mean over where it could be. As in
LaFIn (Yang, Qi & Shi, arXiv:1911.11394, 2019) the network is also given the face's landmarks,
here as a drawing (``guide``, (N, 1, H, W), :mod:`unmasked.data.landmark_guide`). Partial
convolutions ignore whatever lies in the hole of their input, so the guide does not enter the
encoder: a small pyramid of plain convolutions (``guide_channels`` wide, one level per decoder
level) is added to each decoder layer's partial-convolution output, before its BatchNorm,
through a 1x1 convolution that starts at zero. ``guide_kind`` says what the drawing is (the
contours, or the mean face warped onto the points: :func:`unmasked.data.landmark_guide.draw_guide`).
``guide_blur`` (px at ``working_size``, no
parameters) blurs the drawing first: FaceMesh's guess under a mask is a few pixels off, and a model
given sharp lines learned to paint them as edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.layers.blur import gaussian_kernel
from unmasked.layers.partial_conv import PartialConv2d
from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.registry import register_model

#: what a landmark guide shows (``guide_kind``): the contours' drawing, or the mean face warped onto
#: the points (:mod:`unmasked.data.landmark_guide` draws both)
GUIDE_KINDS = ("lines", "mean_face")

OUTPUT_ACTIVATIONS = ("tanh", "clamp")
UPSAMPLE_MODES = ("nearest", "bilinear")


def _kernel_size(layer: int) -> int:
    """Encoder kernel of layer ``layer`` (0-based): 7, 5, 5, 3, 3, ..."""
    return 7 if layer == 0 else 5 if layer < 3 else 3


class PConvBlock(nn.Module):
    """Partial conv -> BatchNorm (optional) -> activation (optional); carries the valid mask.

    ``forward(x, valid)`` -> ``(y, new_valid)`` with ``new_valid`` (N, 1, H', W').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        *,
        bn: bool,
        activation: nn.Module | None,
        multi_channel: bool = False,
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=not bn,
            multi_channel=multi_channel,
        )
        self.bn = nn.BatchNorm2d(out_channels) if bn else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor, valid: torch.Tensor,
                add: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y, new_valid = self.conv(x, valid)
        if add is not None:  # e.g. the landmark guide's features, before BatchNorm
            y = y + add
        return self.act(self.bn(y)), new_valid[:, :1]


@register_model("pconv_unet", "Partial Convolutions U-Net (Liu et al., ECCV 2018)")
class PConvUNet(InpaintModel):
    """Partial Convolutions U-Net (Liu et al., ECCV 2018); see the module docstring.

    ``forward(image, mask)``: ``image`` (N, 3, H, W) in [-1, 1], ``mask`` (N, 1, H, W) with
    1 = hole; H and W multiples of ``model.multiple = 2**depth``. Returns
    :class:`InpaintOutput` with ``image`` (N, 3, H, W) in [-1, 1], not composited.
    """

    def __init__(
        self,
        base_channels: int = 64,
        max_channels: int = 512,
        depth: int = 7,
        freeze_encoder_bn: bool = False,
        working_size: int = 256,
        output_activation: str = "tanh",
        upsample_mode: str = "nearest",
        landmark_guide: bool = False,
        guide_channels: int = 16,
        guide_blur: float = 0.0,
        guide_kind: str = "lines",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if base_channels < 1 or max_channels < base_channels:
            raise ValueError(f"need 1 <= base_channels <= max_channels, got {base_channels}, {max_channels}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}")
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample_mode must be one of {UPSAMPLE_MODES}, got {upsample_mode!r}")
        self.upsample_mode = upsample_mode
        self.multiple = 2**depth  # instance attribute: the pipeline reads model.multiple
        if working_size < self.multiple or working_size % self.multiple:
            raise ValueError(
                f"working_size must be a positive multiple of 2**depth = {self.multiple}, got {working_size}"
            )
        self.working_size = working_size
        self.depth = depth
        self.freeze_encoder_bn = freeze_encoder_bn
        self.output_activation = output_activation

        # channels[0] is the input image; channels[i] the output of encoder layer i
        channels = [3] + [min(base_channels * 2**i, max_channels) for i in range(depth)]
        self.encoder = nn.ModuleList(
            PConvBlock(channels[i], channels[i + 1], _kernel_size(i), 2, bn=i > 0, activation=nn.ReLU(inplace=True))
            for i in range(depth)
        )
        # decoder[j] upsamples level j+1, concatenates level j and outputs channels[j] (3 for j = 0)
        self.decoder = nn.ModuleList(
            PConvBlock(
                channels[j + 1] + channels[j],
                channels[j],
                3,
                1,
                bn=j > 0,
                activation=nn.LeakyReLU(0.2, inplace=True) if j > 0 else None,
                multi_channel=True,
            )
            for j in range(depth)
        )
        self.uses_landmarks = bool(landmark_guide)
        if guide_blur < 0:
            raise ValueError(f"guide_blur must be >= 0, got {guide_blur}")
        self.guide_blur = float(guide_blur)
        if guide_kind not in GUIDE_KINDS:
            raise ValueError(f"guide_kind must be one of {GUIDE_KINDS}, got {guide_kind!r}")
        #: what the guide shows (:func:`unmasked.data.landmark_guide.draw_guide`); the pipeline and
        #: training draw it so, the network only sees the picture
        self.guide_kind = guide_kind
        if self.uses_landmarks:
            # LaFIn-style guidance (see the module docstring): a pyramid of guide features, one
            # level per decoder level, each added to that decoder layer's partial-conv output
            # through a zero-initialised 1x1 conv, so a model grown from unguided weights starts
            # out computing exactly what they did
            self.guide_pyramid = nn.ModuleList(
                nn.Sequential(nn.Conv2d(1 if j == 0 else guide_channels, guide_channels, 3, stride=1 if j == 0 else 2,
                                        padding=1), nn.LeakyReLU(0.2, inplace=True))
                for j in range(depth)
            )
            self.guide_inject = nn.ModuleList(nn.Conv2d(guide_channels, channels[j], 1) for j in range(depth))
            for conv in self.guide_inject:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.train()  # applies freeze_encoder_bn from the start

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self.freeze_encoder_bn:
            for block in self.encoder:
                if isinstance(block.bn, nn.BatchNorm2d):
                    block.bn.eval()  # running stats used and frozen; affine params still learn
        return self

    def load_stage_state(self, state: dict[str, torch.Tensor], source_kwargs: dict) -> None:
        """Load ``state`` saved by a PConvUNet built with ``source_kwargs`` (a new training stage).
        From an unguided model into a landmark-guided one, the guide's layers keep their fresh
        initialisation (the injections are zero, so the function is unchanged)."""
        if self.uses_landmarks and not source_kwargs.get("landmark_guide", False):
            fresh = {k: v for k, v in self.state_dict().items() if k.startswith(("guide_pyramid.", "guide_inject."))}
            state = {**state, **fresh}
        self.load_state_dict(state, strict=True)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None,
                guide: torch.Tensor | None = None) -> InpaintOutput:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must have shape (N, 3, H, W), got {tuple(image.shape)}")
        if (
            mask.ndim != 4
            or mask.shape[1] != 1
            or mask.shape[0] != image.shape[0]
            or mask.shape[-2:] != image.shape[-2:]
        ):
            raise ValueError(f"mask must have shape (N, 1, H, W) matching the image, got {tuple(mask.shape)}")
        h, w = image.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"H and W must be multiples of {self.multiple} (2**depth), got {h}x{w}; pad first")

        if guide is not None and not self.uses_landmarks:
            raise ValueError("this model has no landmark guide (built without landmark_guide)")
        if self.uses_landmarks:
            if guide is None:
                raise ValueError("a landmark-guided model needs guide (N, 1, H, W), the landmarks' drawing")
            if guide.ndim != 4 or guide.shape[1] != 1 or guide.shape[0] != image.shape[0] or guide.shape[-2:] != (h, w):
                raise ValueError(f"guide must have shape (N, 1, H, W) matching the image, got {tuple(guide.shape)}")
            guides, g = [], guide.to(image.dtype)
            if self.guide_blur > 0:  # where the lines are is a guess: soften them (no parameters)
                kernel = gaussian_kernel(self.guide_blur * h / self.working_size).to(g)
                g = F.conv2d(g, kernel, padding=kernel.shape[-1] // 2)
            for level in self.guide_pyramid:
                g = level(g)
                guides.append(g)

        valid = 1.0 - mask.to(image.dtype)  # the one flip: unmasked 1 = hole -> paper 1 = valid
        feats, masks = [image], [valid]
        x = image
        for block in self.encoder:
            x, valid = block(x, valid)
            feats.append(x)
            masks.append(valid)

        for j in reversed(range(self.depth)):
            if self.upsample_mode == "bilinear":
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            else:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            valid = F.interpolate(valid, scale_factor=2, mode="nearest")  # masks stay binary
            skip, skip_valid = feats[j], masks[j]
            cat_valid = torch.cat(
                [valid.expand(-1, x.shape[1], -1, -1), skip_valid.expand(-1, skip.shape[1], -1, -1)], dim=1
            )
            add = self.guide_inject[j](guides[j]) if self.uses_landmarks else None
            x, valid = self.decoder[j](torch.cat([x, skip], dim=1), cat_valid, add)

        out = torch.tanh(x) if self.output_activation == "tanh" else x.clamp(-1.0, 1.0)
        return InpaintOutput(image=out)
