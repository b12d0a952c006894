"""A small network that lays out a hole's colour and shading in natural photos, at low resolution.

The learned half of the scene filler
:class:`unmasked.baselines.layout_patchmatch.LayoutPatchMatch`: the network gives the hole's large-scale
structure and colour (its low band), PatchMatch copies the photo's own texture on top. With 148
natural photos on hand, a network that paints texture too is far behind exemplar copying (the
README's "Remove an object from a photo"), so this one works where little data goes a long way:
the image at 64 px, a few hundred thousand holes.

* **Start:** the hole is first filled by *pull-push* (S. J. Gortler, R. Grzeszczuk, R. Szeliski and
  M. F. Cohen, "The Lumigraph", SIGGRAPH 1996, section 3.4 -- average the known pixels down a
  pyramid, then fill each level's holes from the coarser level), a smooth membrane-like fill in
  a few tensor operations.
* **Network:** a U-Net (Ronneberger et al., MICCAI 2015) of ``levels`` stages, two 3x3
  convolutions + LeakyReLU each, max-pooling down and bilinear up, and two dilated 3x3
  convolutions (rates 2 and 4, a residual block) at the bottom, where a 64 px input is 8 x 8, so
  every hole pixel sees the whole image, as large holes need (the reason LaMa, Suvorov et al.
  WACV 2022, uses Fourier convolutions; at 8 x 8 a dilated convolution covers the same ground).
* **Output:** the pull-push fill plus a zero-initialised residual inside the hole, so training
  starts from the pull-push fill and the known pixels pass through.

Trained with L1 on the hole by :mod:`unmasked.training.scene_layout`. **No weights ship.** After
1,000 steps (batch 32, one CPU core) its 64 px layout was 9 % closer (L1) to held-out photos than
its pull-push start and 5 % closer than Telea run at 64 px, but through ``layout_patchmatch`` at
256 px the fill was 0.3 dB *below* the same filler with Telea's low band (README, "Remove an
object from a photo"): at 64 px every cell that a thin stroke touches is a hole, so the network
never sees the known pixels between the strokes that Telea, at the photo's resolution, uses.
A prototype given Telea's full-resolution fill scaled down (and each cell's hole coverage) in
place of pull-push beat both after 1,000 steps (README); this model is to be rebuilt on that input.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.registry import register_model


def pull_push(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``image`` (N, C, H, W) with the pixels where ``known`` (N, 1, H, W, 1 = known, 0 = hole) is 0
    filled from a pyramid of known-pixel averages (Gortler et al. 1996); known pixels unchanged.
    A picture with no known pixel at all comes back as zeros in the hole."""
    if known.amin() >= 1 or min(image.shape[-2:]) <= 1:
        return image * known
    num = F.avg_pool2d(image * known, 2, ceil_mode=True)
    den = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse = pull_push(num / den.clamp(min=1e-6), (den > 0).to(image.dtype))
    up = F.interpolate(coarse, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return image * known + up * (1 - known)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


@register_model("scene_layout", "Low-resolution layout of a scene's hole (pull-push + U-Net residual)")
class SceneLayout(InpaintModel):
    """(N, 3, H, W) image in [-1, 1] + (N, 1, H, W) mask (1 = hole) -> the hole's layout, same size.

    ``base_channels`` widths double over ``levels`` stages; ``working_size`` is the side the
    weights were trained at (64: the filler runs it on the photo scaled to that).

    Its task is ``"layout"``, not ``"inpaint"``: a 64 px layout is half of a fill, so the fill
    pipelines and ``--model`` refuse it and ``unmasked models`` lists it as a helper network.
    """

    task: ClassVar[str] = "layout"

    def __init__(self, base_channels: int = 32, levels: int = 4, working_size: int = 64) -> None:
        super().__init__()
        if base_channels < 1 or levels < 2:
            raise ValueError(f"need base_channels >= 1 and levels >= 2, got {base_channels}, {levels}")
        self.multiple = 2 ** (levels - 1)
        self.working_size = working_size
        widths = [base_channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList(_block(cin, cout) for cin, cout in zip([4, *widths[:-1]], widths, strict=True))
        self.mid = nn.Sequential(
            nn.Conv2d(widths[-1], widths[-1], 3, padding=2, dilation=2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(widths[-1], widths[-1], 3, padding=4, dilation=4), nn.LeakyReLU(0.2, inplace=True),
        )
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1)))
        self.head = nn.Conv2d(widths[0], 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> InpaintOutput:
        if reference is not None:
            raise ValueError("scene_layout takes no reference image")
        start = pull_push(image, 1 - mask)
        h = torch.cat([start, mask], 1)
        skips = []
        for i, down in enumerate(self.down):
            h = down(h)
            if i < len(self.down) - 1:
                skips.append(h)
                h = F.max_pool2d(h, 2)
        h = h + self.mid(h)
        for up in self.up:
            skip = skips.pop()
            h = up(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return InpaintOutput((start + self.head(h) * mask).clamp(-1.0, 1.0))
