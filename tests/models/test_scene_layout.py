"""The scene layout network and its pull-push start (Gortler et al. 1996)."""

from __future__ import annotations

import pytest
import torch

from unmasked.models.scene_layout import SceneLayout, pull_push


def test_pull_push_fills_a_ramp_between_its_known_ends() -> None:
    # a horizontal ramp with its middle third unknown: the fill lies between the two sides'
    # values, grows from left to right and leaves the known pixels exactly as they were
    ramp = torch.linspace(-1, 1, 48).expand(1, 3, 32, 48).clone()
    known = torch.ones(1, 1, 32, 48)
    known[..., 16:32] = 0
    out = pull_push(ramp * known, known)
    assert torch.equal(out * known, ramp * known)
    row = out[0, 0, 16, 16:32]
    assert row.min() >= ramp[0, 0, 0, 15] - 1e-6 and row.max() <= ramp[0, 0, 0, 32] + 1e-6
    assert (row[1:] - row[:-1] >= -1e-6).all()
    assert (row - ramp[0, 0, 16, 16:32]).abs().mean() < 0.15


def test_pull_push_of_a_constant_is_the_constant() -> None:
    img = torch.full((2, 3, 40, 24), 0.3)
    known = (torch.rand(2, 1, 40, 24, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    assert torch.allclose(pull_push(img * known, known), img, atol=1e-6)


def test_untrained_network_returns_the_pull_push_fill_and_keeps_known_pixels() -> None:
    net = SceneLayout(base_channels=8).eval()
    img = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 10:50] = 1
    with torch.no_grad():
        out = net(img * (1 - mask), mask).image
    assert torch.allclose(out, pull_push(img * (1 - mask), 1 - mask))  # zero-initialised head
    assert torch.equal(out * (1 - mask), img * (1 - mask))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_channels"):
        SceneLayout(base_channels=0)
    with pytest.raises(ValueError, match="reference"):
        SceneLayout(base_channels=4)(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16), torch.zeros(1, 3, 16, 16))
