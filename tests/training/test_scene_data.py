"""Training on a folder of natural photos: the split by file and random crops at several scales."""

import numpy as np
import pytest
import torch

from unmasked.conventions import save_image
from unmasked.data.datasets import file_split
from unmasked.training.config import load_config
from unmasked.training.data import RandomCrops, StepSamples, build_mask_banks, build_split
from unmasked.training.fit import fit


def _ramp(h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 3): red grows with x, green with y, so a crop's values say where and how big it is."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([255 * x / (w - 1), 255 * y / (h - 1), np.full((h, w), 90.0)], -1).round().astype(np.uint8)


def test_file_split_is_a_fixed_one_in_n_slice():
    val, train = file_split(12, "val", 0.2), file_split(12, "train", 0.2)
    assert val == [0, 5, 10] and sorted(val + train) == list(range(12)) and not set(val) & set(train)
    assert file_split(12, "val", 0.5) == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ValueError, match="split must be"):
        file_split(12, "test", 0.2)


def test_random_crops_cover_several_scales_and_repeat_for_a_seed():
    crops = RandomCrops([_ramp(200, 300)], size=32, scales=(0.3, 1.0))
    draws = [crops.draw(0, np.random.default_rng(i)).numpy() for i in range(40)]
    assert all(d.shape == (32, 32, 3) and d.dtype == np.uint8 for d in draws)
    assert np.array_equal(draws[3], crops.draw(0, np.random.default_rng(3)).numpy())
    # the green span of a crop is its side as a fraction of the shorter side (200 px): 0.3 to 1
    spans = np.array([(int(d[-1, :, 1].mean()) - int(d[0, :, 1].mean())) / 255 for d in draws])
    assert spans.min() < 0.45 and spans.max() > 0.85 and (spans > 0.25).all()
    # crops come from everywhere: their mean red (x position) spreads over the photo
    assert np.ptp([d[..., 0].mean() for d in draws]) > 100


def test_scales_config_trains_on_crops_and_validates_on_fixed_centres(tmp_path):
    root = tmp_path / "photos"
    for i in range(6):
        save_image(root / f"{i}.png", np.roll(_ramp(48, 64), 7 * i, axis=1))
    over = {"name": "scenes", "out_dir": str(tmp_path / "runs"), "model": "deepfill_v2",
            "model_kwargs": {"cnum": 4, "working_size": 32}, "data.kind": "folder", "data.root": str(root),
            "data.size": 32, "data.scales": [0.4, 1.0], "masks.kinds": {"object": 1.0, "irregular": 1.0},
            "masks.bank_size": 16, "batch_size": 2, "max_steps": 2, "ckpt_every": 2, "num_workers": 0,
            "val_images": 2}
    cfg = load_config(None, over)
    train, _ = build_split(cfg, "train")
    val, _ = build_split(cfg, "val")
    assert isinstance(train, RandomCrops) and len(train) == 4  # files 1-4; 0 and 5 are validation
    assert isinstance(val, torch.Tensor) and val.shape == (2, 32, 32, 3)  # files 0 and 5
    samples = StepSamples(train, *build_mask_banks(cfg), seed=0)
    a, b = samples[(0, 0)], samples[(0, 0)]
    assert a["image"].shape == (3, 32, 32) and torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    module = fit(cfg, enable_progress_bar=False, logger=False)
    assert module.steps_done == 2
    for bad, match in (({"data.scales": [0.5]}, "data.scales"), ({"data.scales": [0.6, 0.5]}, "data.scales"),
                       ({"data.kind": "identity"}, "for data.kind 'folder'")):
        with pytest.raises(ValueError, match=match):
            load_config(None, {**over, **bad})
