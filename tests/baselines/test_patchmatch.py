"""Tests of the PatchMatch exemplar-inpainting baseline (unmasked.baselines.patchmatch)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from unmasked.baselines.patchmatch import patchmatch_inpaint


def _texture(h: int, w: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 periodic colour texture: diagonal stripes x checkerboard, plus noise."""
    y, x = np.mgrid[0:h, 0:w]
    stripes, checker = ((x + y) // 6) % 2, ((x // 8) + (y // 8)) % 2
    channels = [np.where(stripes, 220, 40), np.where(checker, 200, 60), np.where(stripes ^ checker, 180, 30)]
    img = np.stack(channels, -1).astype(float) + np.random.default_rng(seed).normal(0, noise, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 smooth colour waves plus noise, a stand-in for a photo."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    waves = [120 + 80 * np.sin(6 * x + 2 * y), 110 + 70 * np.cos(5 * y - 3 * x), 100 + 60 * np.sin(9 * x * y + 1)]
    img = np.stack(waves, -1) + np.random.default_rng(seed).normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _strokes(h: int, w: int, frac: float = 0.2, seed: int = 0) -> np.ndarray:
    """(h, w) bool hole of random thick line strokes covering about ``frac`` of the image."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    while mask.mean() < frac:
        p0, p1 = rng.integers(0, [w, h], 2), rng.integers(0, [w, h], 2)
        cv2.line(mask, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 1, max(3, min(h, w) // 16))
    return mask.astype(bool)


def _box(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y0:y1, x0:x1] = True
    return hole


def _mae(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(a[where].astype(float) - b[where].astype(float)).mean())


def _mean_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    out = img.copy()
    out[hole] = img[~hole].mean(axis=0).round()
    return out


def test_outside_hole_unchanged_byte_for_byte() -> None:
    img, hole = _scene(96, 130), _strokes(96, 130, seed=1)
    before = img.copy()
    out = patchmatch_inpaint(img, hole)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out[~hole], img[~hole])
    assert np.array_equal(img, before)  # the input is not modified
    assert not np.array_equal(out[hole], img[hole])


def test_deterministic_for_a_seed() -> None:
    img, hole = _scene(80, 80), _strokes(80, 80, seed=2)
    a = patchmatch_inpaint(img, hole, seed=5)
    assert np.array_equal(a, patchmatch_inpaint(img, hole, seed=5))
    assert not np.array_equal(a, patchmatch_inpaint(img, hole, seed=6))


@pytest.mark.parametrize("seed", [0, 1])
def test_texture_far_better_than_mean_fill_and_telea(seed: int) -> None:
    # Measured on this setup: PatchMatch ~8.5 (about the noise floor), mean fill ~78, Telea ~76.
    img, hole = _texture(128, 128, noise=8, seed=seed), _box(128, 128, 44, 44, 84, 84)
    ours = _mae(patchmatch_inpaint(img, hole, seed=seed), img, hole)
    mean = _mae(_mean_fill(img, hole), img, hole)
    telea = _mae(cv2.inpaint(img, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA), img, hole)
    assert ours < 0.3 * mean
    assert ours < 0.3 * telea


@pytest.mark.parametrize(
    "box",
    [(0, 0, 40, 40), (0, 104, 128, 128), (108, 0, 128, 128)],
    ids=["corner", "right-edge", "bottom-edge"],
)
def test_hole_touching_the_border(box: tuple[int, int, int, int]) -> None:
    # Along only one or two known sides the texture's phase is free, so the fill may be
    # shifted; measured 51-54 (corner, right edge) and 8.6 (bottom edge) vs 78 for mean fill.
    img = _texture(128, 128, noise=8)
    hole = _box(128, 128, *box)
    out = patchmatch_inpaint(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert _mae(out, img, hole) < _mae(_mean_fill(img, hole), img, hole)


def test_hole_larger_than_half_the_image() -> None:
    img = _scene(128, 128)
    hole = np.zeros((128, 128), np.uint8)
    cv2.circle(hole, (64, 64), 56, 1, -1)
    hole = hole.astype(bool)
    assert hole.mean() > 0.5
    out = patchmatch_inpaint(img, hole)
    assert np.array_equal(out[~hole], img[~hole])
    assert _mae(out, img, hole) < _mae(_mean_fill(img, hole), img, hole) * 1.5  # sane colours, no garbage


@pytest.mark.parametrize("size", [16, 8])
def test_tiny_images(size: int) -> None:
    img = _scene(size, size)
    hole = _box(size, size, size // 4, size // 4, size // 2, size // 2)
    out = patchmatch_inpaint(img, hole)
    assert out.shape == img.shape and np.array_equal(out[~hole], img[~hole])


def test_no_room_for_a_whole_patch_falls_back() -> None:
    img = _scene(40, 40)
    hole = np.random.default_rng(0).random((40, 40)) < 0.5  # salt-and-pepper: no known 3 x 3 patch
    out = patchmatch_inpaint(img, hole)
    assert np.array_equal(out[~hole], img[~hole])


def test_no_hole_returns_a_copy() -> None:
    img = _scene(32, 32)
    out = patchmatch_inpaint(img, np.zeros((32, 32), bool))
    assert np.array_equal(out, img) and out is not img


def test_all_hole_raises() -> None:
    with pytest.raises(ValueError, match="no known pixels"):
        patchmatch_inpaint(_scene(32, 32), np.ones((32, 32), bool))


@pytest.mark.parametrize(
    ("img", "hole", "patch_size"),
    [
        (np.zeros((16, 16, 3), np.float32), np.zeros((16, 16), bool), 7),
        (np.zeros((16, 16), np.uint8), np.zeros((16, 16), bool), 7),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 15), bool), 7),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), bool), 6),
    ],
    ids=["float-image", "gray-image", "mask-shape", "even-patch"],
)
def test_bad_inputs_raise(img: np.ndarray, hole: np.ndarray, patch_size: int) -> None:
    with pytest.raises(ValueError):
        patchmatch_inpaint(img, hole, patch_size=patch_size)


def test_speed_512_with_20_percent_hole() -> None:
    patchmatch_inpaint(_scene(64, 64), _strokes(64, 64))  # JIT compile / cache load
    img, hole = _scene(512, 512), _strokes(512, 512, frac=0.2)
    start = time.perf_counter()
    patchmatch_inpaint(img, hole)
    elapsed = time.perf_counter() - start
    # ~1.0 s measured on one core; the bound is generous because shared CI machines are noisy.
    assert elapsed < 15.0, f"512 x 512 with a {hole.mean():.0%} hole took {elapsed:.1f} s"


def test_guide_sets_the_layout_and_patches_the_texture() -> None:
    """PatchMatch started from a guide (a network's fill) puts each texture where the guide's
    layout says, which the onion peel cannot know, and replaces the guide's flat colour by the
    photo's texture."""
    h, w = 96, 128
    img = _texture(h, w, noise=6).astype(int)
    img[:, w // 2 :] = img[:, w // 2 :] // 3 + np.array([150, 20, 20])  # right half: a dark red texture
    img = img.astype(np.uint8)
    a_mean, b_mean = img[:, : w // 2].reshape(-1, 3).mean(0), img[:, w // 2 :].reshape(-1, 3).mean(0)
    hole = _box(h, w, 24, 8, 72, 56)  # inside the left texture
    centre = _box(h, w, 36, 20, 60, 44)
    guide = img.copy()
    guide[hole] = a_mean.round()
    guide[centre] = b_mean.round()  # the guide puts the right half's stuff in the middle of the hole

    def nearer_b(out: np.ndarray) -> bool:
        m = out[centre].reshape(-1, 3).mean(0)
        return bool(np.linalg.norm(m - b_mean) < np.linalg.norm(m - a_mean))

    out = patchmatch_inpaint(img, hole, guide=guide, min_size=24)
    assert np.array_equal(out[~hole], img[~hole])
    assert nearer_b(out) and not nearer_b(patchmatch_inpaint(img, hole, min_size=24))
    ring = hole & ~centre
    # texture, not the guide's flat colour: the photo's local contrast in both parts of the fill
    assert out[centre].std(0).mean() > 0.6 * img[:, w // 2 :].std((0, 1)).mean()
    assert out[ring].std(0).mean() > 0.6 * img[:, : w // 2].std((0, 1)).mean()
    with pytest.raises(ValueError, match="guide must have the image's shape"):
        patchmatch_inpaint(img, hole, guide=guide[:10])


def test_telea_patchmatch_has_teleas_shading_and_patchmatchs_texture() -> None:
    """The split filler: below sigma its fill is Telea's, above it PatchMatch's texture; known
    pixels are untouched; a photo larger than its working size is filled crop by crop."""
    from unmasked.api import load_model
    from unmasked.pipelines.fill import fill_array

    img = _scene(160, 200, seed=3)
    hole = _box(160, 200, 50, 60, 110, 140)
    model = load_model("telea_patchmatch")
    out = fill_array(img, hole, model).image
    assert np.array_equal(out[~hole], img[~hole])
    telea = cv2.inpaint(img, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    pm = patchmatch_inpaint(img, hole)

    def low(a):
        return cv2.GaussianBlur(a.astype(np.float32), (0, 0), 8)

    def grain(a):  # the finest texture: what a 1.5 px blur removes
        return a.astype(np.float32) - cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.5)

    inner = _box(160, 200, 62, 72, 98, 128)  # away from the hole's edge, where the blur mixes in known pixels
    assert _mae(low(out), low(telea), inner) < 0.5 * _mae(low(pm), low(telea), inner)
    assert grain(out)[inner].std() > 0.8 * grain(pm)[inner].std() > 2 * grain(telea)[inner].std()
    big = cv2.resize(img, (2400, 1200), interpolation=cv2.INTER_CUBIC)
    big_hole = np.zeros(big.shape[:2], bool)
    big_hole[500:620, 1700:1800] = True
    stroke = _box(160, 200, 20, 10, 22, 190)  # 2 px wide: every pixel next to a known one, all Navier-Stokes
    np.testing.assert_array_equal(fill_array(img, stroke, model).image,
                                  cv2.inpaint(img, stroke.astype(np.uint8), 5, cv2.INPAINT_NS))
    seen = []
    fill_uint8 = model.fill_uint8
    model.fill_uint8 = lambda rgb, hole, avoid=None: seen.append(rgb.shape) or fill_uint8(rgb, hole, avoid)
    filled = fill_array(big, big_hole, model)
    assert np.array_equal(filled.image[~big_hole], big[~big_hole])
    assert len(seen) == 1 and max(seen[0][:2]) < 400  # one crop around the hole, not the whole photo
    with pytest.raises(ValueError, match="sigma"):
        load_model("telea_patchmatch").__class__(sigma=0)


def test_avoid_keeps_a_region_out_of_the_sources() -> None:
    """Known pixels in ``avoid`` are context but never copied (auto keeps faces off walls): a
    bright green patch next to the hole is copied into it without ``avoid``, never with it,
    through every filler that copies patches and through fill_array's crops."""
    from unmasked.api import load_model
    from unmasked.pipelines.fill import InputError, fill_array

    img = _scene(120, 160, seed=4)
    img[..., 1] = np.minimum(img[..., 1], 180)  # the photo holds no green as bright as the texture's
    img[:, :110] = (_texture(120, 110, noise=4) // 8 + np.array([0, 215, 0])).astype(np.uint8)  # green texture
    hole = _box(120, 160, 40, 40, 80, 80)  # inside the green
    avoid = _box(120, 160, 0, 0, 120, 110)  # all of the green: only the photo on the right may be copied

    def greens(out: np.ndarray) -> int:
        px = out[hole].astype(int)
        return int(((px[:, 1] > 200) & (px[:, 0] < 60) & (px[:, 2] < 60)).sum())

    assert greens(patchmatch_inpaint(img, hole)) > 500  # without avoid: green, the hole's own surroundings
    assert greens(patchmatch_inpaint(img, hole, avoid=avoid)) == 0
    assert greens(fill_array(img, hole, load_model("patchmatch"), avoid=avoid).image) == 0
    # telea_patchmatch diffuses the green surroundings into its low band (as it should), and hands
    # avoid to its PatchMatch, whole or, on a large photo, crop by crop
    import unmasked.baselines.patchmatch as pm_module

    seen = []

    def spy(rgb, hole, **kwargs):
        seen.append((rgb.shape[:2], kwargs.get("avoid")))
        return real(rgb, hole, **kwargs)

    real, pm_module.patchmatch_inpaint = pm_module.patchmatch_inpaint, spy
    try:
        fill_array(img, hole, load_model("telea_patchmatch"), avoid=avoid)
        big, big_hole, big_avoid = (cv2.resize(a.astype(np.uint8), (1600, 1200), interpolation=cv2.INTER_NEAREST)
                                    for a in (img, hole, avoid))
        fill_array(big, big_hole > 0, load_model("telea_patchmatch"), avoid=big_avoid > 0)
    finally:
        pm_module.patchmatch_inpaint = real
    (shape, got), (crop_shape, crop_got) = seen
    np.testing.assert_array_equal(got, avoid & ~hole)  # the hole itself is never a source anyway
    assert crop_shape != (1200, 1600) and crop_got.shape == crop_shape and crop_got.any() and not crop_got.all()
    # an avoid region that leaves nothing to copy is ignored rather than failing
    everything = ~hole
    np.testing.assert_array_equal(patchmatch_inpaint(img, hole, avoid=everything), patchmatch_inpaint(img, hole))
    with pytest.raises(ValueError, match="avoid must have shape"):
        patchmatch_inpaint(img, hole, avoid=avoid[:10])
    with pytest.raises(InputError, match="avoid mask"):
        fill_array(img, hole, load_model("patchmatch"), avoid=avoid[:10])


def _noise_beside_flat() -> tuple[np.ndarray, np.ndarray]:
    """Grey noise (std 40) on the left half, flat grey of the same mean on the right; a hole in the
    noise. At coarse scales the two halves have the same colour."""
    img = np.full((160, 160, 3), 128, np.uint8)
    img[:, :80] = np.clip(128 + np.random.default_rng(0).normal(0, 40, (160, 80, 1)), 0, 255).astype(np.uint8)
    return img, _box(160, 160, 40, 20, 120, 76)


def _grain(img: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(np.diff(img[..., 0].astype(float), axis=1))[hole[:, 1:]].mean())


def test_texture_features_keep_a_noisy_area_from_filling_flat() -> None:
    # Wexler's iterations without texture features fill the hole from the flat half: the coarse
    # scales see the same grey on both sides (Newson et al. 2014's reason for the features)
    img, hole = _noise_beside_flat()
    photo = _grain(img, hole)
    assert _grain(patchmatch_inpaint(img, hole), hole) < 0.1 * photo
    for weight in (4.0, 16.0):
        assert _grain(patchmatch_inpaint(img, hole, texture=weight), hole) > 0.8 * photo


def test_telea_patchmatch_uses_texture_features_by_default() -> None:
    # the scene filler's texture band comes from PatchMatch with texture features (weight 16), so
    # a hole in a noisy area gets noise, not the flat half's grey (README, "Remove an object")
    from unmasked.api import load_model

    img, hole = _noise_beside_flat()
    model = load_model("telea_patchmatch")
    assert model.texture == 16.0
    assert _grain(model.fill_uint8(img, hole), hole) > 0.6 * _grain(img, hole)
    assert _grain(model.__class__(texture=0.0).fill_uint8(img, hole), hole) < 0.2 * _grain(img, hole)
    with pytest.raises(ValueError, match="texture"):
        model.__class__(texture=-1.0)
