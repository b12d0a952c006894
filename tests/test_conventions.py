"""Tensor ranges, mask meaning, compositing, padding and file loading."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from unmasked import conventions as cv


def test_uint8_tensor_round_trip_is_exact():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = cv.image_to_tensor(rgb)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    assert cv.image_to_tensor(np.array([[[0, 255, 0]]], np.uint8)).flatten().tolist() == [-1.0, 1.0, -1.0]
    np.testing.assert_array_equal(cv.tensor_to_image(t)[0], rgb)


def test_tensor_to_image_clips_out_of_range():
    t = torch.tensor([-3.0, 0.0, 3.0]).view(1, 3, 1, 1)
    assert cv.tensor_to_image(t)[0, 0, 0].tolist() == [0, 128, 255]


def test_image_to_tensor_rejects_float_and_wrong_shape():
    with pytest.raises(ValueError, match="uint8"):
        cv.image_to_tensor(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        cv.image_to_tensor(np.zeros((4, 4, 4), np.uint8))


def test_mask_conversion_one_is_hole():
    m = np.array([[True, False], [False, True]])
    t = cv.mask_to_tensor(m)
    assert t.shape == (1, 1, 2, 2) and t.flatten().tolist() == [1.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(cv.tensor_to_mask(t)[0], m)


def test_composite_takes_hole_from_prediction_and_rest_from_image():
    image = torch.full((1, 3, 2, 2), -1.0)
    pred = torch.full((1, 3, 2, 2), 1.0)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    out = cv.composite(pred, image, mask)
    assert out[0, 0].tolist() == [[1.0, -1.0], [-1.0, -1.0]]


def test_checks_name_expected_shapes_and_ranges():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        cv.check_image(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        cv.check_image(torch.full((1, 3, 4, 4), 2.0))
    with pytest.raises(ValueError, match="1 = hole"):
        cv.check_mask(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="does not match"):
        cv.check_mask(torch.zeros(1, 1, 4, 5), like=torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="0 \\(keep\\) or 1 \\(hole\\)"):
        cv.check_mask(torch.full((1, 1, 4, 4), 0.5))
    cv.check_image(torch.zeros(2, 3, 4, 4))
    cv.check_mask(torch.ones(2, 1, 4, 4), like=torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("h,w,m", [(5, 7, 8), (16, 16, 8), (1, 3, 4), (33, 17, 16)])
def test_pad_to_multiple_and_back(h, w, m):
    x = torch.randn(1, 3, h, w)
    padded, pad = cv.pad_to_multiple(x, m)
    assert padded.shape[-2] % m == 0 and padded.shape[-1] % m == 0
    assert padded.shape[-2] - h < m and padded.shape[-1] - w < m
    torch.testing.assert_close(cv.unpad(padded, pad), x)


def _png_bytes(array, mode):
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_load_image_keeps_alpha_and_greyscale_mode(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, (6, 5, 4), dtype=np.uint8)
    img = cv.load_image(_png_bytes(rgba, "RGBA"))
    assert img.mode == "RGBA" and img.size == (6, 5)
    np.testing.assert_array_equal(img.alpha, rgba[..., 3])
    np.testing.assert_array_equal(img.rgb, rgba[..., :3])
    grey = np.arange(30, dtype=np.uint8).reshape(6, 5)
    g = cv.load_image(_png_bytes(grey, "L"))
    assert g.rgb.shape == (6, 5, 3) and g.alpha is None
    np.testing.assert_array_equal(g.rgb[..., 1], grey)
    assert g.to_pil().mode == "L"


def test_load_mask_white_is_hole_and_alpha_respected():
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert cv.load_mask(_png_bytes(grey, "L")).tolist() == [[False, False, True, True]]
    # white strokes on a transparent layer: transparent white is not a hole
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, :3] = 255
    rgba[0, :, 3] = [255, 0, 200]
    assert cv.load_mask(_png_bytes(rgba, "RGBA")).tolist() == [[True, False, True]]


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(cv.ImageReadError, match="not found"):
        cv.load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(cv.ImageReadError, match="not a supported image"):
        cv.load_image(bad)
    big = _png_bytes(np.zeros((100, 100), np.uint8), "L")
    with pytest.raises(cv.ImageReadError, match="above the limit"):
        cv.load_image(big, max_pixels=9_999)
    truncated = _png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")[:400]
    with pytest.raises(cv.ImageReadError):
        cv.load_image(truncated)


def test_save_image_is_atomic_and_round_trips(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "out.png"
    cv.save_image(path, rgb)
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]  # no temp file left
    np.testing.assert_array_equal(cv.load_image(path).rgb, rgb)
    with pytest.raises(ValueError, match="unknown image format"):
        cv.save_image(tmp_path / "out.xyz", rgb)
