"""layout_patchmatch: Telea's low band corrected by a layout network, PatchMatch's texture."""

from __future__ import annotations

import numpy as np
import torch

from unmasked.baselines.classical import TeleaPatchMatch
from unmasked.baselines.layout_patchmatch import LayoutPatchMatch
from unmasked.models.scene_layout import SceneLayout


def _photo() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:120, 0:160] / 120.0
    rgb = np.stack([60 + 150 * y, 90 + 80 * x, 200 - 120 * y], 2) + np.random.default_rng(0).normal(0, 8, (120, 160, 3))
    hole = np.zeros((120, 160), bool)
    hole[40:80, 50:110] = True
    return np.clip(rgb, 0, 255).astype(np.uint8), hole


def test_an_untrained_network_changes_nothing_but_its_correction() -> None:
    rgb, hole = _photo()
    net = SceneLayout(base_channels=4)  # zero-initialised head: the layout is its pull-push start
    filler = LayoutPatchMatch(layout_model=net)
    correction = filler.layout_correction(rgb, hole, TeleaPatchMatch().smooth_fill(rgb, hole))
    assert np.all(correction[~hole] == 0)
    assert np.abs(correction[hole]).mean() < 12  # pull-push and Telea agree on a smooth ramp, roughly
    out = filler.fill_uint8(rgb, hole)
    assert np.array_equal(out[~hole], rgb[~hole])


def test_the_correction_moves_the_low_band_to_the_networks_layout() -> None:
    rgb, hole = _photo()
    net = SceneLayout(base_channels=4)
    with torch.no_grad():
        net.head.bias.fill_(0.5)  # the network paints the hole a quarter brighter than its start
    bright = LayoutPatchMatch(layout_model=net).fill_uint8(rgb, hole).astype(float)
    plain = LayoutPatchMatch(layout_model=SceneLayout(base_channels=4)).fill_uint8(rgb, hole).astype(float)
    inner = np.zeros_like(hole)
    inner[50:70, 60:100] = True
    assert (bright[inner] - plain[inner]).mean() > 30
