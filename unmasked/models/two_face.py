"""Two-Face: reference-guided face inpainting.

After the Two-Face report (reference-guided inpainting: a second photo of the same person
guides the fill; an encoder for the masked face and one for the reference, fused and
decoded; identity loss; local + global discriminators; curriculum training). Here the
masked-face encoder/decoder is this project's DeepFill v2 generator (Yu et al., ICCV 2019,
:mod:`unmasked.models.deepfill_v2`), so a trained face model is the starting point instead
of training from scratch, which this CPU cannot afford.

Generator (:class:`TwoFace`)
    ``forward(image, mask, reference=None)``: ``image`` and ``reference`` (N, 3, H, W) in
    [-1, 1], both FFHQ-aligned faces of the same person (so a feature at a given position
    describes the same part of both faces), ``mask`` (N, 1, H, W), 1 = hole.

    * **reference encoder**: plain 5x5 / 3x3 convs with ELU down to 1/4 resolution
      (4 * cnum / 2 channels, the width of DeepFill's bottleneck), plus its global average
      (a whole-face identity code, broadcast over the grid);
    * **fusion**, at the two bottlenecks of DeepFill v2 (after the coarse encoder, and where
      the refinement's dilated and attention branches meet): ``x + W [x, r, g]`` with ``W`` a
      1x1 conv **initialised to zero**. At initialisation the model therefore computes
      exactly the DeepFill v2 it was loaded from, and training only has to learn what the
      reference adds;
    * without a reference the fusion is skipped: the model is its DeepFill v2;
    * ``fusion=False`` leaves the fusion out (the reference then acts only through the detail
      head, on the plain fill: the fusion cost the shipped model 0.9 dB PSNR);
    * with ``detail=True``, a **reference detail** head (:class:`ReferenceDetail`) at full
      resolution: five small convolutions see the aligned reference, the refined fill, the mask
      and both images low-passed, and add a residual inside the hole, the last layer
      initialised to zero. The fusions
      above meet the reference at 1/4 resolution; measured on held-out people, what makes a fill
      the person's in dlib's eyes is the reference's fine detail at full resolution (adding the
      aligned reference's high frequencies to a plain fill moves it 0.07 closer to a third photo,
      where the 1/4-resolution fusion moves it 0.01; README, "Two-Face"). The head is to learn
      where that detail fits; measured, alone it still copies streaks of the reference's hair
      and glasses onto some faces (README);
    * ``mirror_agreement=True`` runs the detail head twice, with the reference and with its mirror
      image, and keeps only what both residuals agree on (:func:`mirror_agreement`), which drops
      those streaks.

    Returns a :class:`DeepFillOutput`: the refined ``image`` and the first stage's ``coarse``.

Discriminators: two :class:`~unmasked.models.deepfill_v2.SNPatchGAN`, a **global** one on
the whole (composited) face and a **local** one on a square around the hole
(:func:`crop_around_holes`), as in the Two-Face report (and Iizuka et al., "Globally and
Locally Consistent Image Completion", SIGGRAPH 2017); both trained with the hinge loss.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.layers.blur import gaussian_kernel
from unmasked.models.base import DeepFillOutput, InpaintModel
from unmasked.models.deepfill_v2 import DeepFillV2
from unmasked.registry import register_model


class ReferenceEncoder(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> (N, width, H/4, W/4) features and (N, width) global code."""

    def __init__(self, width: int) -> None:
        super().__init__()
        c = max(8, width // 4)
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 5, padding=2), nn.ELU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ELU(),
            nn.Conv2d(2 * c, width, 3, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ELU(),
        )

    def forward(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net(reference)
        return features, features.mean(dim=(2, 3))


class Fusion(nn.Module):
    """``x + W [x, r, broadcast(g)]`` with ``W`` a zero-initialised 1x1 conv (identity at init)."""

    def __init__(self, channels: int, ref_channels: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(channels + 2 * ref_channels, channels, 1)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, x: torch.Tensor, ref: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if ref.shape[-2:] != x.shape[-2:]:
            ref = F.interpolate(ref, size=x.shape[-2:], mode="bilinear", align_corners=False)
        glob = code[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return x + self.mix(torch.cat([x, ref.to(x.dtype), glob.to(x.dtype)], dim=1))


class ReferenceDetail(nn.Module):
    """Full-resolution residual added inside the hole, from the aligned reference, the refined
    fill, the mask, and both images low-passed (Gaussian, ``sigma`` px), so that it can see where
    the two disagree (glasses, hair, another expression) and the reference's detail does not belong.
    Five convolutions (receptive field 19 px); the last is zero-initialised, so at
    initialisation the head adds nothing."""

    def __init__(self, width: int = 32, sigma: float = 2.0) -> None:
        super().__init__()
        self.register_buffer("blur", gaussian_kernel(sigma).repeat(3, 1, 1, 1), persistent=False)
        self.net = nn.Sequential(
            nn.Conv2d(13, width, 3, padding=1), nn.ELU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ELU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ELU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _low(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.blur.shape[-1] // 2
        return F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), self.blur.to(x.dtype), groups=3)

    def forward(self, refined: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if reference.shape[-2:] != refined.shape[-2:]:
            reference = F.interpolate(reference, size=refined.shape[-2:], mode="bilinear", align_corners=False)
        m = mask.to(refined.dtype)
        reference = reference.to(refined.dtype)
        x = torch.cat([reference, refined, m, self._low(reference), self._low(refined)], dim=1)
        return (refined + m * self.net(x)).clamp(-1.0, 1.0)


#: parameter-name prefixes of the 1/4-resolution fusion path (dropped with ``fusion=False``)
FUSION_PREFIXES = ("reference_encoder.", "fuse_coarse.", "fuse_refine.")


@register_model("two_face")
class TwoFace(InpaintModel):
    """Reference-guided face inpainting (Two-Face): DeepFill v2 guided by a photo of the same person.

    See the module docstring; ``cnum`` as in :class:`DeepFillV2`."""

    multiple: ClassVar[int] = 8
    uses_reference: ClassVar[bool] = True

    def __init__(self, cnum: int = 32, attention: bool = True, working_size: int = 128, detail: bool = False,
                 fusion: bool = True, mirror_agreement: bool = False) -> None:
        super().__init__()
        if not (detail or fusion):
            raise ValueError("two_face needs a reference path: fusion=True and/or detail=True")
        if mirror_agreement and not detail:
            raise ValueError("mirror_agreement acts on the detail head: it needs detail=True")
        self.cnum, self.working_size, self.detail, self.fusion = cnum, working_size, detail, fusion
        self.mirror_agreement = mirror_agreement
        self.inpainter = DeepFillV2(cnum=cnum, attention=attention, working_size=working_size)
        width = 4 * (cnum // 2)  # channels of DeepFill's 1/4-resolution bottleneck
        if fusion:
            self.reference_encoder = ReferenceEncoder(width)
            self.fuse_coarse = Fusion(width, width)
            self.fuse_refine = Fusion(2 * width, width)
        self.reference_detail = ReferenceDetail(cnum) if detail else None

    def load_inpainter(self, state: dict[str, torch.Tensor]) -> None:
        """Start from a trained :class:`DeepFillV2` of the same ``cnum`` (its state dict)."""
        self.inpainter.load_state_dict(state, strict=True)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> DeepFillOutput:
        if reference is None:
            return self.inpainter(image, mask)
        n = image.shape[0]
        if reference.ndim != 4 or reference.shape[0] != n or reference.shape[1] != 3:
            raise ValueError(f"reference must have shape ({n}, 3, H', W'), got {tuple(reference.shape)}")
        if self.fusion:
            ref, code = self.reference_encoder(reference.to(image.dtype))
            out = self.inpainter.run(image, mask, coarse_hook=lambda x: self.fuse_coarse(x, ref, code),
                                     refine_hook=lambda x: self.fuse_refine(x, ref, code))
        else:
            out = self.inpainter(image, mask)
        if self.reference_detail is None:
            return out
        reference = reference.to(out.image.dtype)
        if not self.mirror_agreement:
            return DeepFillOutput(self.reference_detail(out.image, reference, mask), out.coarse)
        return DeepFillOutput(out.image + mirror_agreement(self.reference_detail(out.image, reference, mask) - out.image,
                                                           self.reference_detail(out.image, reference.flip(-1), mask)
                                                           - out.image), out.coarse)

    def load_stage_state(self, state: dict[str, torch.Tensor], source_kwargs: dict) -> None:
        """Load a previous stage's weights. From a model without the detail head into one with it,
        the head keeps its fresh (zero-output) initialisation; into a model with ``fusion=False``,
        the fusion's weights (reference encoder, both fusions) are dropped."""
        if self.reference_detail is not None and not source_kwargs.get("detail", False):
            state = {**state, **{f"reference_detail.{k}": v for k, v in self.reference_detail.state_dict().items()}}
        if not self.fusion and source_kwargs.get("fusion", True):
            state = {k: v for k, v in state.items() if not k.startswith(FUSION_PREFIXES)}
        self.load_state_dict(state, strict=True)


def mirror_agreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """What two residuals agree on: per element, the smaller magnitude where their signs agree, 0 elsewhere.

    ``a`` and ``b`` are the detail head's residuals with the aligned reference and with its mirror
    image. A face is close to symmetric, so the person's detail (beard, lips, the shape of the
    mouth and jaw) comes out of both; what is not symmetric in the reference (a strand of hair
    across one cheek, the far cheek's edge of a turned face, a one-sided expression) lies in only
    one of them and is dropped. Measured on held-out people (README, "Two-Face"): the streaks
    copied from such references go, at some of the identity gain.
    """
    return torch.where(torch.sign(a) == torch.sign(b), torch.sign(a) * torch.minimum(a.abs(), b.abs()),
                       torch.zeros_like(a))


def crop_around_holes(images: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """Per sample, the ``size`` x ``size`` square centred on the hole's bounding box (kept inside the image).

    ``images`` (N, C, H, W), ``mask`` (N, 1, H, W), 1 = hole; returns (N, C, size, size). The
    crop is slicing, so gradients flow to the cropped pixels. A sample without a hole is
    cropped at the centre. This is the local discriminator's view.
    """
    n, _, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"local crop {size} is larger than the image {h}x{w}")
    crops = []
    for i in range(n):
        ys, xs = torch.nonzero(mask[i, 0] > 0.5, as_tuple=True)
        if len(ys):
            cy = (int(ys.min()) + int(ys.max()) + 1) // 2
            cx = (int(xs.min()) + int(xs.max()) + 1) // 2
        else:
            cy, cx = h // 2, w // 2
        top = min(max(cy - size // 2, 0), h - size)
        left = min(max(cx - size // 2, 0), w - size)
        crops.append(images[i, :, top : top + size, left : left + size])
    return torch.stack(crops)
