"""``layout_patchmatch``: the scene filler with a learned low band.

:class:`~unmasked.baselines.classical.TeleaPatchMatch` splits a hole's fill by spatial frequency:
Telea's colour and shading below ``sigma``, PatchMatch's copied texture above. Telea's guess of a
large hole's colour is a diffusion: the boundary's colours smeared inwards. Here a small network
(:class:`~unmasked.models.scene_layout.SceneLayout`, trained on natural photos at 64 px) corrects
that low band: Telea fills the hole at the photo's resolution, the photo so filled is scaled to
the network's side (the hole's coverage with it), the network lays out the hole, and its
difference from the scaled Telea fill is scaled back up and added to Telea's fill at the photo's
resolution. Next to the known pixels the two agree (the network sees them), so the correction
fades to nothing at the hole's edge and no seam appears; the texture stays PatchMatch's, copied
from the photo itself. This is the hybrid the object-removal issue allows where the photos at
hand are too few for a network to paint texture: the network lays out structure and colour,
exemplar patches supply the texture.

The network is a frozen model it is built on (``layout``, default the shipped ``scene_layout64``),
loaded by :func:`unmasked.checkpoint.build_model`; ``unmasked fill --model layout_patchmatch``
and :func:`unmasked.hub.load_model` do that.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from unmasked.baselines.classical import TeleaPatchMatch
from unmasked.models.base import InpaintModel
from unmasked.models.scene_layout import network_input
from unmasked.registry import register_model


@register_model("layout_patchmatch", "Telea + a learned 64 px layout for colour and shading, PatchMatch's texture "
                                     "(Newson et al. 2014 features), Navier-Stokes at the edge")
class LayoutPatchMatch(TeleaPatchMatch):
    """Telea + a network's low-band correction for colour and shading, PatchMatch's texture,
    Navier-Stokes at the edge (see the module docstring).

    ``layout`` names the layout network (a shipped preset or a ``.safetensors`` path);
    ``layout_model`` is that network, loaded (:func:`unmasked.checkpoint.build_model` hands it in).
    """

    runtime_args = ("layout_model",)
    builds_on = {"layout": "layout_model"}

    def __init__(self, layout: str = "scene_layout64", sigma: float = 8.0, edge: float = 3.0, patch_size: int = 7,
                 seed: int = 0, radius: int = 3, texture: float = 16.0, layout_model: InpaintModel | None = None):
        super().__init__(sigma=sigma, edge=edge, patch_size=patch_size, seed=seed, radius=radius, texture=texture)
        if layout_model is None:
            raise ValueError("layout_patchmatch is built on a layout network: build it with "
                             "unmasked.checkpoint.build_model('layout_patchmatch', layout=...) or load_model")
        if layout_model.task != "layout":
            raise ValueError(f"layout_patchmatch: {layout!r} is a {layout_model.task!r} model, not a scene layout")
        # a plain attribute, not a submodule: the layout weights are not this filler's parameters
        self.__dict__["layout_model"] = layout_model.eval()

    def smooth_fill(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """float32 (H, W, 3): Telea's fill of ``hole`` plus the network's correction, upsampled."""
        telea = super().smooth_fill(rgb, hole)
        return telea + self.layout_correction(telea, hole)

    @torch.no_grad()
    def layout_correction(self, telea: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """float32 (H, W, 3), zero outside ``hole``: the network's layout minus Telea's fill (``telea``,
        the photo with its hole filled), both at the network's scale, resized to the photo."""
        net = self.layout_model
        image, cover, (sh, sw) = network_input(telea, hole, net.working_size or 64, net.multiple)
        out = net(image, cover).image
        delta = ((out - image) * 127.5)[0, :, :sh, :sw].permute(1, 2, 0).numpy()
        h, w = hole.shape
        return cv2.resize(delta, (w, h), interpolation=cv2.INTER_CUBIC) * hole[..., None]
