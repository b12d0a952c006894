"""The Python API: model resolution (presets, baselines, checkpoints) and Inpainter."""

import numpy as np
import pytest

import unmasked
from unmasked import create_model, hub, save_checkpoint
from unmasked.registry import UnknownModelError


def test_untrained_architecture_by_name_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="untrained architecture: no trained weights ship"):
        unmasked.load_model("deepfill_v2")


def test_shipped_preset_is_found_by_name(monkeypatch, tmp_path):
    model = create_model("deepfill_v2", cnum=4, working_size=32)
    save_checkpoint(model, tmp_path / "tiny_faces.safetensors")
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)
    loaded = unmasked.load_model("tiny_faces")
    assert loaded.config == model.config and loaded.working_size == 32
    with pytest.raises(UnknownModelError, match="trained presets: tiny_faces"):
        unmasked.load_model("nope")
    with pytest.raises(ValueError, match=r"use a trained preset \(tiny_faces\)"):
        unmasked.load_model("deepfill_v2")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    hole = np.zeros((40, 56), bool)
    hole[10:20, 10:30] = True
    out = np.asarray(unmasked.Inpainter("tiny_faces").fill(rgb, hole))
    assert out.shape == rgb.shape
    np.testing.assert_array_equal(out[~hole], rgb[~hole])


def test_checkpoint_path_loads(tmp_path):
    path = save_checkpoint(create_model("pconv_unet", base_channels=8, max_channels=16, depth=3, working_size=32),
                           tmp_path / "p.safetensors")
    assert unmasked.load_model(str(path)).config["name"] == "pconv_unet"
