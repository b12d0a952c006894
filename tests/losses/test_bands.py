"""The band penalty (unmasked.losses.bands) on drawn images with known structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unmasked.faces.mean_face import horizontal_band_ratio, shipped_mean_face
from unmasked.losses.bands import band_loss, band_region, orientation_energies


def stripes(horizontal: bool, period: int = 8, size: int = 128) -> torch.Tensor:
    """(1, 3, size, size) in [-1, 1]: grey stripes, horizontal (along rows) or upright."""
    t = torch.arange(size, dtype=torch.float32)
    wave = 0.5 * torch.sin(2 * torch.pi * t / period)
    img = wave[:, None].expand(size, size) if horizontal else wave[None, :].expand(size, size)
    return img.expand(1, 3, size, size).clone()


def square_hole(size: int = 128) -> torch.Tensor:
    hole = torch.zeros(1, 1, size, size)
    hole[..., 32:96, 32:96] = 1.0
    return hole


def test_orientation_energies_tell_horizontal_from_upright_edges():
    region = square_hole()
    eh, ev = orientation_energies(stripes(True), region)
    assert eh.item() > 50 * ev.item()  # horizontal stripes: all of it in the first
    eh, ev = orientation_energies(stripes(False), region)
    assert ev.item() > 50 * eh.item()
    flat = torch.zeros(1, 3, 128, 128)
    assert orientation_energies(flat, region)[0].item() == pytest.approx(0.0, abs=1e-9)


def test_band_loss_is_zero_for_the_photo_and_rises_with_bands_the_photo_lacks():
    photo = 0.6 * stripes(False, period=16)  # upright structure only
    hole = square_hole()
    assert band_loss(photo, photo, hole).item() == pytest.approx(0.0, abs=1e-7)
    banded = photo.clone()
    banded[..., 32:96, 32:96] += 0.2 * stripes(True)[..., 32:96, 32:96]
    loss = band_loss(banded, photo, hole).item()
    assert loss > 0.2  # measured 0.32: the bands' energy over the photo's upright edges
    # bands the photo has too cost nothing; fewer bands than the photo cost nothing either
    assert band_loss(banded, banded, hole).item() == pytest.approx(0.0, abs=1e-7)
    assert band_loss(photo, banded, hole).item() == pytest.approx(0.0, abs=1e-7)
    # outside the hole nothing counts
    outside = photo.clone()
    outside[..., :24, :] += 0.2 * stripes(True)[..., :24, :]
    assert band_loss(outside, photo, hole).item() == pytest.approx(0.0, abs=1e-7)


def test_the_guides_lines_are_left_out_and_the_gradient_reaches_the_fill():
    photo = 0.6 * stripes(False, period=16)
    hole = square_hole()
    banded = photo.clone()
    banded[..., 60:64, 32:96] -= 0.5  # one dark horizontal line across the hole (a painted lip line)
    guide = torch.zeros(1, 1, 128, 128)
    assert band_loss(banded, photo, hole).item() > 0.05
    guide[..., 61, 30:98] = 1.0  # the guide draws a line there: it belongs
    assert band_region(hole, guide)[..., 58:65, 40:90].sum() == 0  # the line, grown 3 px
    assert band_loss(banded, photo, hole, guide).item() < 0.1 * band_loss(banded, photo, hole).item()
    fill = banded.clone().requires_grad_(True)
    band_loss(fill, photo, hole).backward()
    assert fill.grad is not None and fill.grad[..., 32:96, 32:96].abs().sum() > 0


def test_band_loss_agrees_with_the_pipelines_band_ratio_on_which_fill_is_banded():
    """The loss is the pipeline's measure (unmasked.faces.mean_face.horizontal_band_ratio) made
    differentiable: of two fills of the same photo, the one with the higher ratio costs more."""
    rng = np.random.default_rng(0)
    upright = 10 * np.sin(2 * np.pi * np.arange(128) / 16)[None, :, None]  # skin with faint upright structure
    photo = np.clip(150 + upright + rng.normal(0, 3, (128, 128, 3)), 0, 255).astype(np.uint8)
    points = shipped_mean_face().points * 128 / shipped_mean_face().image.shape[0]  # a face's 68 points at 128²
    hole = np.zeros((128, 128), bool)
    hole[int(points[29, 1]):int(points[8, 1]) - 4, int(points[3, 0]) + 4:int(points[13, 0]) - 4] = True  # nose to chin
    banded = photo.copy()
    rows = np.arange(int(points[29, 1]) + 2, int(points[8, 1]) - 6, 7)
    banded[rows, int(points[4, 0]):int(points[12, 0])] -= 30  # dark lines 7 px apart across the lower face
    smooth = photo.copy()
    ratios = [horizontal_band_ratio(f, hole, points) for f in (smooth, banded)]
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # noqa: E731
    h = torch.from_numpy(hole.astype(np.float32))[None, None]
    losses = [band_loss(to_t(f), to_t(photo), h).item() for f in (smooth, banded)]
    assert ratios[1] > 1.3 > ratios[0]
    assert losses[1] > losses[0] + 0.5
