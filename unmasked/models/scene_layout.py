"""A small network that corrects the colour and shading of a hole's fill in natural photos, at 64 px.

The learned half of the scene filler ``layout_patchmatch``
(:class:`unmasked.baselines.layout_patchmatch.LayoutPatchMatch`): the network gives the hole's
large-scale structure and colour (its low band), PatchMatch copies the photo's own texture on top.
With 148 natural photos on hand, a network that paints texture too is far behind exemplar copying
(the README's "Remove an object from a photo"), so this one works where little data goes a long
way: the image at 64 px, and a fresh crop and hole for every sample (64,000 for the shipped weights).

* **Input (5 channels at 64 px):** the photo with its hole *prefilled* by Telea's fast marching
  (A. Telea, J. Graphics Tools 2004) run at the photo's own resolution and only then scaled down,
  the hole flag (a cell with any hole pixel) and each cell's hole *coverage* (the share of its
  pixels in the hole). Prefilling at full resolution matters: at 64 px every cell that a thin
  stroke touches is a hole, and a network that starts from the scaled-down photo never sees the
  known pixels between the strokes that Telea, at the photo's resolution, has used. (The first
  version started from a pull-push fill at 64 px, Gortler et al., SIGGRAPH 1996, and lost 0.3 dB
  through the filler for that reason.)
* **Network:** a U-Net (Ronneberger et al., MICCAI 2015) of ``levels`` stages, two 3x3
  convolutions + LeakyReLU each, max-pooling down and bilinear up, and two dilated 3x3
  convolutions (rates 2 and 4, a residual block) at the bottom, where a 64 px input is 8 x 8, so
  every hole cell sees the whole image, as large holes need (the reason LaMa, Suvorov et al.
  WACV 2022, uses Fourier convolutions; at 8 x 8 a dilated convolution covers the same ground).
* **Output:** the prefill plus a zero-initialised residual on the hole's cells, so training starts
  from Telea's fill and the known cells pass through.

Trained with L1 on the hole's cells by :mod:`unmasked.training.scene_layout`; the shipped weights
(``scene_layout64``) and their numbers are in ``unmasked/weights/scene_layout64.md``.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unmasked.models.base import InpaintModel, InpaintOutput
from unmasked.registry import register_model

#: the network's input channels: prefilled RGB, hole flag, hole coverage
IN_CHANNELS = 5


def network_input(prefill: np.ndarray, hole: np.ndarray, side: int, multiple: int = 1
                  ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """The network's input for one photo: ``prefill`` (H, W, 3, uint8 or float 0-255: the photo with
    its hole filled, at the photo's resolution) and ``hole`` (H, W, bool) scaled so the longer side
    is ``side`` (area averaging), then padded to a multiple of ``multiple`` by reflection (the
    padding counted as known).

    Returns the image (1, 3, h, w) in [-1, 1], the hole coverage (1, 1, h, w) in [0, 1] (the share
    of each cell's pixels in the hole; > 0 marks a hole cell) and the unpadded size (sh, sw).
    """
    h, w = hole.shape
    scale = side / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(np.asarray(prefill, np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    cover = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    pad = ((0, -(-sh // multiple) * multiple - sh), (0, -(-sw // multiple) * multiple - sw))
    if any(after for _, after in pad):
        mode = "reflect" if min(sh, sw) > 1 else "edge"  # reflection needs two rows
        small = np.pad(small, (*pad, (0, 0)), mode=mode)
        cover = np.pad(cover, pad)
    image = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)) / 127.5 - 1.0)[None]
    return image, torch.from_numpy(np.ascontiguousarray(cover))[None, None], (sh, sw)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))


@register_model("scene_layout", "Low-resolution colour and shading of a scene's hole (Telea prefill + U-Net residual)")
class SceneLayout(InpaintModel):
    """(N, 3, H, W) prefilled image in [-1, 1] + (N, 1, H, W) hole coverage in [0, 1] (a binary
    mask, 1 = hole, is the coverage of a hole at the network's own resolution) -> the hole's
    layout, same size: the prefill plus a learned residual on every cell whose coverage is > 0.

    ``base_channels`` widths double over ``levels`` stages; ``working_size`` is the side the
    weights were trained at (64: :func:`network_input` scales the photo's longer side to it).

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
        self.down = nn.ModuleList(_block(cin, cout) for cin, cout in zip([IN_CHANNELS, *widths[:-1]], widths, strict=True))
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
        flag = (mask > 0).to(image.dtype)
        h = torch.cat([image, flag, mask], 1)
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
        return InpaintOutput((image + self.head(h) * flag).clamp(-1.0, 1.0))
