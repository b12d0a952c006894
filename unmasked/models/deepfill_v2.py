"""DeepFill v2: a two-stage gated-convolution generator and the SN-PatchGAN discriminator.

Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated Convolution",
ICCV 2019 (the generator of Fig. 3, the SN-PatchGAN discriminator of Sec. 3.2), built on
the two-stage coarse-to-fine network with contextual attention of Yu et al., "Generative
Image Inpainting with Contextual Attention", CVPR 2018. The layer plan follows
``build_inpaint_net`` / ``build_sn_patch_gan_discriminator`` of the authors' DeepFill v2
release (``inpaint_model.py``); the code here is our own.

Generator (:class:`DeepFillV2`)
    input: concat(incomplete image = image * (1 - mask), ones, mask), 5 channels; with
    ``sketch=True`` (the paper's user-guided model, Sec. 3.4) concat(incomplete image,
    sketch * mask, ones, mask), 6 channels, in the reference's order (its ``guided`` mode
    concatenates the edge map to the incomplete image before the ones and the mask). The
    sketch reaches only the coarse network's first layer; the refinement sees RGB alone,
    as in the reference. A sketch-less checkpoint widens to a sketch model with the new
    input channel's weights at zero (:meth:`DeepFillV2.load_stage_state`), so that with
    no sketch drawn the widened model computes exactly what the original did.
    ``sketch_gain`` multiplies the sketch channel at the input: weights that start at zero
    then learn ``sketch_gain`` times faster under Adam (whose steps are about ``lr`` in
    size whatever the gradient's scale), as the equalised learning rate of Karras et al.
    (ICLR 2018) does for every layer; the sketch-less weights keep their pace.
    ``sketch_refine=True`` (a deviation from the reference, measured: see the sketch model
    card) also feeds the sketch to the refinement's dilated-conv branch (``xconv1`` takes RGB +
    sketch): the coarse network passes everything through a 1/4-resolution bottleneck and is
    trained towards a blurred fill, so a one-pixel line barely survives it; the refinement is
    where the detail is made. That channel too starts at zero when widened.
    Coarse network: a gated encoder down to 1/4 resolution, four dilated gated convs
    (rates 2, 4, 8, 16), a gated decoder with nearest x2 up-sampling, a plain 3x3 conv to
    RGB and tanh. Refinement network: its input is the coarse result pasted into the hole,
    ``coarse * mask + incomplete * (1 - mask)`` (this paste is part of the paper's
    architecture, not output compositing), fed to two branches at 1/4 resolution, a
    dilated-conv branch and a contextual-attention branch, whose features are concatenated
    and decoded like the coarse network. Returns the refined image, with the coarse one in
    ``coarse`` (a :class:`~unmasked.models.base.DeepFillOutput`); neither is composited with the input.

    ``cnum`` counts channels as the authors' code does: it is the number of outputs of a
    gated convolution's single conv, **features and gates together**, so a layer declared
    with ``cnum`` passes on ``cnum / 2`` feature maps (``gen_conv`` splits its output in
    two). ``cnum=48`` is the paper's network: 4.05 M parameters (the paper reports 4.1 M).
    A "base width" of B feature channels at full resolution is ``cnum = 2 * B``.

Discriminator (:class:`SNPatchGAN`)
    input: concat(image, mask), 4 channels (the reference with ``gan_with_mask``; no ones
    channel). Six spectrally normalised 5x5 stride-2 convs with cnum, 2, 4, 4, 4, 4 x cnum
    channels (paper: cnum = 64), LeakyReLU(0.2) after every one of them, as in the
    reference (including the last). Output: the patch-score map (N, 4 * cnum, ceil(H/64),
    ceil(W/64)), not flattened; the hinge losses in :mod:`unmasked.losses.gan` average over
    all of it, which equals the reference's mean over the flattened vector.

Deviations from the authors' TensorFlow code:

* each sample of a batch attends with its own mask (the reference's contextual attention
  uses the first sample's mask for the whole batch); see
  :mod:`unmasked.layers.contextual_attention` for that layer's other corrections;
* the mask handed to contextual attention is reduced to 1/4 resolution by max-pooling (a
  cell is a hole if any of its pixels is), where the reference samples it with
  nearest-neighbour resizing, which can declare a cell crossed by a thin stroke "valid";
* "same" padding is symmetric (PyTorch ``padding=k//2``); TensorFlow's SAME pads stride-2
  convs on the bottom/right only;
* PyTorch's default weight initialisation instead of TensorFlow's Glorot-uniform;
* ``attention=False`` (an ablation, not in the reference) replaces only the contextual
  attention layer by the identity; the branch's convolutions, and so the checkpoint keys,
  stay the same.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.layers import ContextualAttention, GatedConv2d, GatedUpConv2d, sn_conv2d
from unmasked.models.base import DeepFillOutput, InpaintModel
from unmasked.registry import register_model

#: ``DeepFillV2.coarse`` children conv1 .. conv6 form the encoder; the dilated block and decoder follow
COARSE_ENCODER_LAYERS = 6


def _dilated_block(c: int, prefix: str) -> list[tuple[str, nn.Module]]:
    """Four gated 3x3 convs with dilation 2, 4, 8, 16 (receptive field for large holes)."""
    return [
        (f"{prefix}{i}_atrous", GatedConv2d(c, c, 3, dilation=d))
        for i, d in zip(range(7, 11), (2, 4, 8, 16), strict=True)
    ]


def _decoder(cin: int, c: int, prefix: str) -> list[tuple[str, nn.Module]]:
    """1/4 resolution (cin channels) -> full-resolution RGB in [-1, 1]; c = cnum / 2."""
    return [
        (f"{prefix}11", GatedConv2d(cin, 4 * c)),
        (f"{prefix}12", GatedConv2d(4 * c, 4 * c)),
        (f"{prefix}13_up", GatedUpConv2d(4 * c, 2 * c)),
        (f"{prefix}14", GatedConv2d(2 * c, 2 * c)),
        (f"{prefix}15_up", GatedUpConv2d(2 * c, c)),
        (f"{prefix}16", GatedConv2d(c, c // 2)),
        (f"{prefix}17", nn.Conv2d(c // 2, 3, 3, padding=1)),  # output conv: no gate
        ("tanh", nn.Tanh()),
    ]


@register_model("deepfill_v2")
class DeepFillV2(InpaintModel):
    """DeepFill v2 generator (Yu et al., ICCV 2019): gated coarse net + refinement with contextual attention.

    ``forward(image, mask)``: ``image`` (N, 3, H, W) in [-1, 1], ``mask`` (N, 1, H, W),
    1 = hole, H and W multiples of 8. Returns :class:`DeepFillOutput` with ``image`` the
    refined result (N, 3, H, W) in [-1, 1] and ``coarse`` the first stage's.
    ``cnum`` (a multiple of 4; paper 48) counts features + gates, see the module docstring.
    """

    # x4 down-sampling inside the network, and contextual attention halves that again
    multiple: ClassVar[int] = 8

    def __init__(self, cnum: int = 48, attention: bool = True, working_size: int = 256, sketch: bool = False,
                 sketch_gain: float = 1.0, sketch_refine: bool = False) -> None:
        super().__init__()
        if cnum < 4 or cnum % 4:
            raise ValueError(
                f"cnum must be a positive multiple of 4 (the last gated layer has cnum/4 features), got {cnum}"
            )
        self.cnum = cnum
        self.working_size = working_size
        #: the model takes a sketch (N, 1, H, W), 1 = line, as a sixth input channel
        self.uses_sketch = bool(sketch)
        if not sketch_gain > 0:
            raise ValueError(f"sketch_gain must be positive, got {sketch_gain}")
        self.sketch_gain = float(sketch_gain)
        if sketch_refine and not sketch:
            raise ValueError("sketch_refine needs sketch=True")
        #: the refinement's dilated-conv branch sees the sketch too (its first conv: RGB + sketch)
        self.sketch_refine = bool(sketch_refine)
        c = cnum // 2  # feature maps after the first gated conv

        self.coarse = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", GatedConv2d(6 if sketch else 5, c, 5)),
                    ("conv2_down", GatedConv2d(c, 2 * c, 3, stride=2)),
                    ("conv3", GatedConv2d(2 * c, 2 * c)),
                    ("conv4_down", GatedConv2d(2 * c, 4 * c, 3, stride=2)),
                    ("conv5", GatedConv2d(4 * c, 4 * c)),
                    ("conv6", GatedConv2d(4 * c, 4 * c)),
                    *_dilated_block(4 * c, "conv"),
                    *_decoder(4 * c, c, "conv"),
                ]
            )
        )

        # refinement, branch (a): like the coarse encoder (slightly thinner at 1/2 resolution)
        self.refine_conv_branch = nn.Sequential(
            OrderedDict(
                [
                    ("xconv1", GatedConv2d(4 if sketch_refine else 3, c, 5)),
                    ("xconv2_down", GatedConv2d(c, c, 3, stride=2)),
                    ("xconv3", GatedConv2d(c, 2 * c)),
                    ("xconv4_down", GatedConv2d(2 * c, 2 * c, 3, stride=2)),
                    ("xconv5", GatedConv2d(2 * c, 4 * c)),
                    ("xconv6", GatedConv2d(4 * c, 4 * c)),
                    *_dilated_block(4 * c, "xconv"),
                ]
            )
        )
        # refinement, branch (b): features for contextual attention; the last conv is
        # ReLU-activated as in the reference, so the cosine scores compare non-negative features
        self.refine_attention_encoder = nn.Sequential(
            OrderedDict(
                [
                    ("pmconv1", GatedConv2d(3, c, 5)),
                    ("pmconv2_down", GatedConv2d(c, c, 3, stride=2)),
                    ("pmconv3", GatedConv2d(c, 2 * c)),
                    ("pmconv4_down", GatedConv2d(2 * c, 4 * c, 3, stride=2)),
                    ("pmconv5", GatedConv2d(4 * c, 4 * c)),
                    ("pmconv6", GatedConv2d(4 * c, 4 * c, activation=nn.ReLU())),
                ]
            )
        )
        self.attention = ContextualAttention(patch_size=3, rate=2, softmax_scale=10.0) if attention else None
        self.refine_attention_decoder = nn.Sequential(
            OrderedDict([("pmconv9", GatedConv2d(4 * c, 4 * c)), ("pmconv10", GatedConv2d(4 * c, 4 * c))])
        )
        self.refine_decoder = nn.Sequential(OrderedDict(_decoder(8 * c, c, "allconv")))

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None,
                sketch: torch.Tensor | None = None) -> DeepFillOutput:
        return self.run(image, mask, sketch=sketch)

    def run(self, image: torch.Tensor, mask: torch.Tensor, *, sketch: torch.Tensor | None = None, coarse_hook=None,
            refine_hook=None) -> DeepFillOutput:
        """The forward pass; ``coarse_hook`` / ``refine_hook`` (tensor -> tensor), if given, transform
        the features at the coarse bottleneck (after ``conv6``) and where the refinement's two
        branches meet, so that an extension (``two_face``) can inject features there.

        ``sketch``: (N, 1, H, W) in {0, 1}, 1 = line, for a model built with ``sketch=True``;
        lines outside the hole are ignored (multiplied by the mask); None = no sketch (zeros)."""
        n, _, h, w = image.shape
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"DeepFillV2 needs H and W to be multiples of {self.multiple}, got {h}x{w} (pad first)")
        if mask.shape != (n, 1, h, w):
            raise ValueError(f"mask must have shape {(n, 1, h, w)} (1 = hole), got {tuple(mask.shape)}")
        mask = mask.to(image.dtype)

        # hole pixels are zeroed here, so nothing the model computes can depend on them
        incomplete = image * (1.0 - mask)
        if sketch is not None and not self.uses_sketch:
            raise ValueError("this DeepFillV2 has no sketch channel (built with sketch=False); leave the sketch out")
        guide = self._guide(sketch, mask)
        x = self.coarse[:COARSE_ENCODER_LAYERS](torch.cat([incomplete, *guide, torch.ones_like(mask), mask], dim=1))
        if coarse_hook is not None:
            x = coarse_hook(x)
        coarse = self.coarse[COARSE_ENCODER_LAYERS:](x)

        x = coarse * mask + incomplete * (1.0 - mask)
        hallucinated = self.refine_conv_branch(torch.cat([x, *guide], dim=1) if self.sketch_refine else x)
        features = self.refine_attention_encoder(x)
        if self.attention is not None:
            small_mask = F.max_pool2d(mask, kernel_size=4)  # 1/4 resolution, any hole pixel -> hole
            attended = self.attention(features, features, small_mask)
            # the layer returns NCHW-contiguous output; keep the caller's memory format
            if features.is_contiguous(memory_format=torch.channels_last):
                attended = attended.contiguous(memory_format=torch.channels_last)
            features = attended
        features = self.refine_attention_decoder(features)
        merged = torch.cat([hallucinated, features], dim=1)
        if refine_hook is not None:
            merged = refine_hook(merged)
        refined = self.refine_decoder(merged)
        return DeepFillOutput(refined, coarse)

    @staticmethod
    def _sketch(sketch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if sketch.shape != mask.shape:
            raise ValueError(f"sketch must have the mask's shape {tuple(mask.shape)} (1 = line), got {tuple(sketch.shape)}")
        return sketch.to(mask.dtype) * mask

    def _guide(self, sketch: torch.Tensor | None, mask: torch.Tensor) -> list[torch.Tensor]:
        if not self.uses_sketch:
            return []
        return [torch.zeros_like(mask) if sketch is None else self._sketch(sketch, mask) * self.sketch_gain]

    def load_stage_state(self, state: dict[str, torch.Tensor], source_kwargs: dict) -> None:
        """Load ``state`` saved by a DeepFillV2 built with ``source_kwargs`` (a new training stage).

        From a sketch-less model into a sketch model, the first conv gains the sketch input
        channel (index 3) with zero weights, and so does the refinement's ``xconv1`` for
        ``sketch_refine``: without a sketch the result is unchanged. Between models with another
        ``sketch_gain``, those channels' weights are rescaled so that the model computes the
        same function.
        """
        state = dict(state)
        ratio = source_kwargs.get("sketch_gain", 1.0) / self.sketch_gain
        for key, index, had in (("coarse.conv1.conv.weight", 3, source_kwargs.get("sketch", False)),
                                ("refine_conv_branch.xconv1.conv.weight", 3, source_kwargs.get("sketch_refine", False))):
            wanted = self.uses_sketch if key.startswith("coarse") else self.sketch_refine
            if not wanted:
                continue
            w = state[key]
            if not had:  # a new input channel at ``index``, zero: the function is unchanged
                state[key] = torch.cat([w[:, :index], torch.zeros_like(w[:, :1]), w[:, index:]], dim=1)
            elif ratio != 1.0:
                w = w.clone()
                w[:, index] *= ratio
                state[key] = w
        self.load_state_dict(state, strict=True)


class SNPatchGAN(nn.Module):
    """SN-PatchGAN discriminator (Yu et al., ICCV 2019, Sec. 3.2); not an inpainting model.

    ``forward(image, mask, guide=None)``: ``image`` (N, 3, H, W) in [-1, 1] (real, or a generator
    output composited into its input), ``mask`` (N, 1, H, W), 1 = hole. Returns the patch-score map
    (N, 4 * cnum, ceil(H / 64), ceil(W / 64)); every element is one GAN score of a
    receptive-field patch. Six 5x5 stride-2 spectrally normalised convs, LeakyReLU(0.2)
    after each (the last included, as in the reference).

    ``guide_channels`` > 0 makes it a conditional discriminator: ``guide`` (N, guide_channels, H, W),
    the drawing the generator was given (DeepFill v2's user sketch, or the face's landmarks), is
    stacked onto its input, so a fill that ignores the drawing can be told from a photo that agrees
    with it. DeepFill v2's user-guided mode gives its discriminator the sketch this way, and LaFIn
    (Yang, Qi & Shi, 2019) gives its face inpainter's discriminator the landmarks; pix2pix (Isola et
    al., CVPR 2017) is the general conditional form. The guide is the same for the photo and its fill.
    """

    def __init__(self, cnum: int = 64, guide_channels: int = 0) -> None:
        super().__init__()
        if guide_channels < 0:
            raise ValueError(f"guide_channels must be >= 0, got {guide_channels}")
        self.cnum = cnum
        self.guide_channels = guide_channels
        widths = (cnum, 2 * cnum, 4 * cnum, 4 * cnum, 4 * cnum, 4 * cnum)
        layers: list[nn.Module] = []
        cin = 4 + guide_channels  # RGB + mask (+ the guide)
        for cout in widths:
            layers += [sn_conv2d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        if self.guide_channels:
            if guide is None or guide.shape[1] != self.guide_channels or guide.shape[-2:] != image.shape[-2:]:
                got = None if guide is None else tuple(guide.shape)
                raise ValueError(f"this discriminator takes a guide of shape (N, {self.guide_channels}, H, W) "
                                 f"matching the image, got {got}")
            return self.net(torch.cat([image, mask.to(image.dtype), guide.to(image.dtype)], dim=1))
        return self.net(torch.cat([image, mask.to(image.dtype)], dim=1))
