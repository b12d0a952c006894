"""The realism measure: a classifier two-sample test that a blurred fill cannot pass."""

import cv2
import numpy as np
import pytest

from unmasked.evaluation.realism import c2st, deepest_patch, hole_patch


def _textured(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (n, 1, 1, 3))
    return np.clip(base + rng.normal(0, 30, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def test_same_distribution_scores_near_chance():
    a, b = _textured(200, 0), _textured(200, 1)
    r = c2st(a, b, [i % 10 for i in range(200)], steps=150)
    assert 0.38 <= r["accuracy"] <= 0.62 and r["n"] == 400


def test_blur_is_told_apart_from_texture():
    real = _textured(80, 0)
    blurred = np.stack([cv2.GaussianBlur(x, (0, 0), 2.0) for x in real])  # same colours, no texture
    r = c2st(blurred, real, [i % 8 for i in range(80)], steps=150)
    assert r["accuracy"] > 0.9 and r["ci_low"] > 0.8


def test_c2st_is_reproducible_and_checks_its_input():
    real, other = _textured(40, 0), _textured(40, 2)
    groups = [i % 4 for i in range(40)]
    assert c2st(other, real, groups, steps=30) == c2st(other, real, groups, steps=30)
    with pytest.raises(ValueError, match="two groups"):
        c2st(other, real, [0] * 40, steps=10)
    with pytest.raises(ValueError, match="equal shape"):
        c2st(other[:10], real, groups, steps=10)


def test_hole_patch_is_the_square_around_the_hole():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 20:80] = 255
    hole = np.zeros((100, 100), bool)
    hole[40:60, 20:80] = True
    patch = hole_patch(image, hole, size=32, margin=0.0)
    assert patch.shape == (32, 32, 3)
    # a 60 px square centred on the 60 x 20 hole: the white band fills its middle third
    assert patch[16, 16].min() == 255 and patch[2, 16].max() == 0
    with pytest.raises(ValueError, match="non-empty"):
        hole_patch(image, np.zeros((100, 100), bool))


def test_per_stratum_accuracy_finds_the_blurred_half():
    """With strata, the accuracy of each stratum is over its own pairs: a stratum whose fills are
    blurred is told apart, one whose fills are photos is not, and the overall figure is unchanged."""
    real = _textured(120, 0)
    fills = _textured(120, 5)
    fills[::2] = np.stack([cv2.GaussianBlur(x, (0, 0), 2.0) for x in real[::2]])
    strata = ["blur" if i % 2 == 0 else "photo" for i in range(120)]
    groups = [i % 12 for i in range(120)]
    r = c2st(fills, real, groups, steps=150, strata=strata)
    assert r == {**c2st(fills, real, groups, steps=150), "by": r["by"]}
    assert r["by"]["blur"]["n"] == r["by"]["photo"]["n"] == 120
    assert r["by"]["blur"]["accuracy"] > 0.8 > r["by"]["photo"]["accuracy"] + 0.15
    with pytest.raises(ValueError, match="one stratum per pair"):
        c2st(fills, real, groups, steps=10, strata=strata[:5])


def test_deepest_patch_is_the_native_square_at_the_holes_deepest_pixel():
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    hole = np.zeros((200, 300), bool)
    hole[10:14, :] = True  # a thin stroke across the top: shallow everywhere
    hole[100:161, 200:261] = True  # a block: deepest at its centre (130, 230)
    patch = deepest_patch(image, hole, size=32)
    assert np.array_equal(patch, image[114:146, 214:246])  # native pixels, no resizing
    hole[:] = False
    hole[190:200, 290:300] = True  # at the corner: the square is clipped into the image
    assert np.array_equal(deepest_patch(image, hole, size=32), image[168:200, 268:300])
    with pytest.raises(ValueError, match="non-empty"):
        deepest_patch(image, np.zeros((200, 300), bool))
    with pytest.raises(ValueError, match="at least 64x64"):
        deepest_patch(image[:40], hole[170:])


def test_kid_is_near_zero_for_one_distribution_and_large_for_another():
    from unmasked.evaluation.realism import kid

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (200, 16)), rng.normal(0, 1, (200, 16))
    shifted = rng.normal(0, 1, (200, 16)) * 0.3 + 0.8  # another mean and a smaller spread: a blur
    same, other = kid(a, b), kid(shifted, b)
    assert abs(same["kid"]) < 3 * same["se"] + 0.05  # unbiased: around 0
    assert other["kid"] > 1.0 and other["kid"] > 20 * other["se"]
    assert kid(shifted, b) == other  # deterministic for a seed
    assert kid(shifted, b, seed=1) != other
    with pytest.raises(ValueError, match="same D"):
        kid(a, b[:, :8])


def test_texture_features_are_the_mean_and_spread_of_each_channel():
    import torch

    from unmasked.evaluation.realism import KID_LAYERS, texture_features

    class Maps(torch.nn.Module):  # stands in for VGG-19: the image and its square, per layer
        def forward(self, x):
            return {name: x * (i + 1) for i, name in enumerate(KID_LAYERS)}

    patches = _textured(5, 0)
    f = texture_features(patches, Maps(), batch=2)
    x = patches.astype(np.float64) / 255
    assert f.shape == (5, 2 * 3 * len(KID_LAYERS))
    np.testing.assert_allclose(f[:, :3], x.mean((1, 2)), rtol=1e-5)
    np.testing.assert_allclose(f[:, 3:6], x.std((1, 2), ddof=1), rtol=1e-4)
    np.testing.assert_allclose(f[:, 6:9], 2 * x.mean((1, 2)), rtol=1e-5)
