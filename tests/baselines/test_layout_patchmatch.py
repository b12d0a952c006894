"""layout_patchmatch: Telea's low band corrected by a layout network, PatchMatch's texture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unmasked.baselines.classical import TeleaPatchMatch
from unmasked.baselines.layout_patchmatch import LayoutPatchMatch
from unmasked.checkpoint import build_model, load_checkpoint, save_checkpoint
from unmasked.models.scene_layout import SceneLayout
from unmasked.registry import create_model


def _photo() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:120, 0:160] / 120.0
    rgb = np.stack([60 + 150 * y, 90 + 80 * x, 200 - 120 * y], 2) + np.random.default_rng(0).normal(0, 8, (120, 160, 3))
    hole = np.zeros((120, 160), bool)
    hole[40:80, 50:110] = True
    return np.clip(rgb, 0, 255).astype(np.uint8), hole


def test_an_untrained_network_leaves_telea_patchmatch_as_it_is() -> None:
    rgb, hole = _photo()
    net = SceneLayout(base_channels=4)  # zero-initialised head: the layout is its Telea prefill
    filler = LayoutPatchMatch(layout_model=net)
    assert not np.any(filler.layout_correction(TeleaPatchMatch().smooth_fill(rgb, hole), hole))
    out = filler.fill_uint8(rgb, hole)
    assert np.array_equal(out, TeleaPatchMatch().fill_uint8(rgb, hole))
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


def test_it_needs_a_layout_network() -> None:
    with pytest.raises(ValueError, match="build_model"):
        LayoutPatchMatch()
    with pytest.raises(ValueError, match="not a scene layout"):
        LayoutPatchMatch(layout="telea", layout_model=create_model("telea"))
    with pytest.raises(ValueError, match="neither a shipped preset nor a checkpoint"):
        build_model("layout_patchmatch", layout="no_such_layout")


def test_a_saved_filler_records_its_layout_not_the_networks_weights(tmp_path) -> None:
    net_path = save_checkpoint(SceneLayout(base_channels=4), tmp_path / "net.safetensors")
    filler = build_model("layout_patchmatch", layout=str(net_path), texture=4.0)
    assert filler.config["kwargs"] == {"layout": str(net_path), "texture": 4.0}
    assert not list(filler.parameters())  # the frozen network is not the filler's own
    loaded = load_checkpoint(save_checkpoint(filler, tmp_path / "filler.safetensors"))
    assert isinstance(loaded.layout_model, SceneLayout) and loaded.texture == 4.0
