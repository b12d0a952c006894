"""``LayoutPatchMatch``: the scene filler with a learned low band (not registered yet).

:class:`~unmasked.baselines.classical.TeleaPatchMatch` splits a hole's fill by spatial frequency:
Telea's colour and shading below ``sigma``, PatchMatch's copied texture above. Telea's guess of a
large hole's colour is a diffusion: the boundary's colours smeared inwards. Here a small network
(:class:`~unmasked.models.scene_layout.SceneLayout`, trained on natural photos at 64 px) corrects
that low band: the photo is scaled to the network's side, the network lays out the hole, and its
difference from the scaled Telea fill is scaled back up and added to Telea's fill at the photo's
resolution. Next to the known pixels the two agree (the network sees them), so the correction
fades to nothing at the hole's edge and no seam appears; the texture stays PatchMatch's, copied
from the photo itself. This is the hybrid the object-removal issue allows where the photos at
hand are too few for a network to paint texture: the network lays out structure and colour,
exemplar patches supply the texture.

No layout weights ship yet (:mod:`unmasked.models.scene_layout` says why), so this filler is not
registered by :mod:`unmasked.baselines` and ``fill``/``eval`` do not offer it; build it with a
trained run to score one: ``LayoutPatchMatch(layout_model=load_checkpoint(run / "scene_layout.safetensors"))``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from unmasked.baselines.classical import TeleaPatchMatch
from unmasked.models.base import InpaintModel


class LayoutPatchMatch(TeleaPatchMatch):
    """Telea + a network's low-band correction for colour and shading, PatchMatch's texture,
    Navier-Stokes at the edge (see the module docstring).

    ``layout_model`` is the layout network, loaded (:class:`~unmasked.models.scene_layout.SceneLayout`)."""

    runtime_args = ("layout_model",)
    registry_name = None

    def __init__(self, layout_model: InpaintModel, sigma: float = 8.0, edge: float = 3.0, patch_size: int = 7,
                 seed: int = 0, radius: int = 3, texture: float = 16.0):
        super().__init__(sigma=sigma, edge=edge, patch_size=patch_size, seed=seed, radius=radius, texture=texture)
        self.layout_model = layout_model.eval()

    def smooth_fill(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """float32 (H, W, 3): Telea's fill of ``hole`` plus the network's correction, upsampled."""
        telea = super().smooth_fill(rgb, hole)
        return telea + self.layout_correction(rgb, hole, telea)

    @torch.no_grad()
    def layout_correction(self, rgb: np.ndarray, hole: np.ndarray, telea: np.ndarray) -> np.ndarray:
        """float32 (H, W, 3), zero outside ``hole``: the network's layout minus Telea's fill, both at
        the network's scale (the longer side ``working_size``), resized to the photo."""
        h, w = hole.shape
        side = self.layout_model.working_size or 64
        scale = side / max(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        m = self.layout_model.multiple
        ph, pw = -(-sh // m) * m, -(-sw // m) * m
        small_rgb = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
        small_telea = cv2.resize(telea, (sw, sh), interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
        # pad to the network's multiple by reflection, the padding counted as known
        pad = ((0, ph - sh), (0, pw - sw))
        x = np.pad(small_rgb, (*pad, (0, 0)), mode="reflect") / 127.5 - 1.0
        k = np.pad(small_hole, pad)
        x[k] = 0.0
        image = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        mask = torch.from_numpy(k.astype(np.float32))[None, None]
        out = self.layout_model(image, mask).image[0, :, :sh, :sw].permute(1, 2, 0).numpy()
        delta = ((out + 1.0) * 127.5 - small_telea) * small_hole[..., None]
        up = cv2.resize(delta, (w, h), interpolation=cv2.INTER_CUBIC)
        return up * hole[..., None]
