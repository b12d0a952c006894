"""The scene layout network and the input it is given (a full-resolution prefill scaled down)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unmasked.hub import load_model
from unmasked.models.scene_layout import SceneLayout, network_input
from unmasked.training.scene_layout import hole_l1, load_photos, sample, to_tensors


def test_untrained_network_returns_its_prefill_and_keeps_known_cells() -> None:
    net = SceneLayout(base_channels=8).eval()
    img = torch.rand(1, 3, 64, 64) * 2 - 1
    cover = torch.zeros(1, 1, 64, 64)
    cover[..., 20:40, 10:50] = 0.25
    with torch.no_grad():
        out = net(img, cover).image
    assert torch.equal(out, img)  # zero-initialised head: the layout is the prefill
    with torch.no_grad():
        net.head.bias.fill_(0.5)
        moved = net(img, cover).image
    hole = cover.expand_as(img) > 0
    assert torch.equal(moved[~hole], img[~hole])  # known cells pass through, whatever the network does
    assert not torch.equal(moved[hole], img[hole])


def test_network_input_keeps_the_aspect_ratio_and_measures_coverage() -> None:
    prefill = np.zeros((100, 300, 3), np.uint8)
    prefill[:, 150:] = 255
    hole = np.zeros((100, 300), bool)
    hole[0:50, 0:60] = True  # a hole that fills whole cells ...
    hole[80:82, 200:300] = True  # ... and a stroke that covers a fifth of a row of cells
    image, cover, (sh, sw) = network_input(prefill, hole, side=60, multiple=8)
    assert (sh, sw) == (20, 60) and image.shape == (1, 3, 24, 64) and cover.shape == (1, 1, 24, 64)
    assert image[0, :, :20, :30].eq(-1).all() and image[0, :, :20, 30:60].eq(1).all()
    c = cover[0, 0]
    assert c[:10, :12].eq(1).all() and c[10:20, :12].eq(0).all()
    assert torch.allclose(c[16, 40:60], torch.full((20,), 0.4))  # rows 80-82 of 100: 2 of the cell's 5
    assert c[20:].eq(0).all() and c[:, 60:].eq(0).all()  # the padding counts as known
    assert torch.equal(image[0, :, 20:24, :60], image[0, :, 15:19, :60].flip(-2))  # reflected, not zeros


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="base_channels"):
        SceneLayout(base_channels=0)
    with pytest.raises(ValueError, match="reference"):
        SceneLayout(base_channels=4)(torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 16, 16), torch.zeros(1, 3, 16, 16))


def test_shipped_layout_is_closer_to_held_out_photos_than_its_telea_start(shared_data) -> None:
    # 96 fresh crops and holes of the held-out scene files (a seed the training log did not use):
    # the shipped weights' layout at 64 px against Telea's full-resolution fill scaled down
    held_out = load_photos(shared_data / "scenes", "val")
    items = [sample(held_out, np.random.default_rng([1, 10**9, k])) for k in range(96)]
    prefill, cover, photo = to_tensors(items, 64)
    flag = (cover > 0).float()
    with torch.no_grad():
        net = hole_l1(load_model("scene_layout64")(prefill, cover).image, photo, flag).item()
    telea = hole_l1(prefill, photo, flag).item()
    assert net < 0.93 * telea, (net, telea)
