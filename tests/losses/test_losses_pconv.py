"""Known-answer tests for the PConv loss (Liu et al., ECCV 2018, Eq. 1-7) and its VGG features."""

from pathlib import Path

import pytest
import torch

from unmasked.losses import PConvLoss, VGG19Relu31, gram_matrix, hole_valid_l1, model_range_to_unit, tv_loss
from unmasked.losses.pconv import PAPER_WEIGHTS, style_loss

VGG_PATH = Path(__file__).resolve().parents[3] / "shared" / "weights" / "vgg19_relu3_1.pth"
needs_vgg = pytest.mark.skipif(not VGG_PATH.is_file(), reason="../shared/weights not found")


def _pair(seed=0, n=2, size=32, noise=0.2):
    g = torch.Generator().manual_seed(seed)
    target = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=size, mode="bilinear") * 2 - 1
    output = (target + noise * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    mask = torch.zeros(n, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    return output, target, mask


# --------------------------------------------------------------------------- pixel terms


def test_hole_and_valid_are_normalised_by_all_elements():
    target = torch.zeros(1, 3, 2, 2)
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1  # one hole pixel of four
    output = torch.where(mask.bool(), torch.full_like(target, 0.5), torch.full_like(target, -0.25))
    hole, valid = hole_valid_l1(output, target, mask)
    # |0.5| * 3 elements / 12 and |-0.25| * 9 elements / 12: divided by C*H*W, not the hole area
    assert hole.item() == pytest.approx(0.125)
    assert valid.item() == pytest.approx(0.1875)


def test_tv_counts_pairs_inside_the_one_pixel_dilation_of_the_hole():
    comp = torch.arange(16.0).view(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 0, 0] = 1  # P = rows 0-1 x cols 0-1
    # horizontal pairs in P: |1-0| + |5-4| = 2; vertical: |4-0| + |5-1| = 8; / 16 elements
    assert tv_loss(comp, mask).item() == pytest.approx(10 / 16)

    ramp = torch.arange(5.0).expand(1, 1, 5, 5)  # value = column index
    centre = torch.zeros(1, 1, 5, 5)
    centre[..., 2, 2] = 1  # P = the 3x3 block around it: 3 rows x 2 horizontal pairs, diff 1
    assert tv_loss(ramp, centre).item() == pytest.approx(6 / 25)
    assert tv_loss(ramp, torch.zeros(1, 1, 5, 5)).item() == 0


def test_gram_matrix_of_a_known_feature_map():
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4  # Psi Psi^T / (C H W)
    torch.testing.assert_close(gram_matrix(feats)[0], expected)
    other = torch.zeros(1, 2, 1, 2)
    # mean |K_p difference| = the paper's 1/C_p^2 * L1
    assert style_loss({"a": feats}, {"a": gram_matrix(other)}).item() == pytest.approx(expected.mean().item())


def test_total_without_features_is_the_weighted_sum_and_says_so():
    loss = PConvLoss()
    assert not loss.uses_features and "OFF" in loss.describe()
    output, target, mask = _pair()
    terms = loss(output, target, mask)
    assert set(terms) == {"valid", "hole", "tv", "total"}
    expected = terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"]
    assert terms["total"].item() == pytest.approx(expected.item())
    custom = PConvLoss(valid_weight=2.0, hole_weight=0.0, tv_weight=1.0)(output, target, mask)
    assert custom["total"].item() == pytest.approx((2 * terms["valid"] + terms["tv"]).item())


def test_mask_is_one_for_hole_and_tv_uses_the_composite():
    output, target, mask = _pair()
    terms = PConvLoss()(output, target, mask)
    # changing the prediction in known pixels leaves the hole and TV terms (on I_comp) alone
    changed = torch.where(mask.bool(), output, -output)
    other = PConvLoss()(changed, target, mask)
    assert other["hole"].item() == pytest.approx(terms["hole"].item())
    assert other["tv"].item() == pytest.approx(terms["tv"].item())
    assert other["valid"].item() != pytest.approx(terms["valid"].item())
    perfect = PConvLoss()(target, target, mask)  # only the TV of the ground truth itself is left
    assert perfect["hole"].item() == 0 and perfect["valid"].item() == 0
    assert perfect["total"].item() == pytest.approx(0.1 * tv_loss(target, mask).item())


def test_paper_weights():
    assert PAPER_WEIGHTS == {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}


def test_bad_shapes_are_refused():
    output, target, mask = _pair()
    with pytest.raises(ValueError, match="mask"):
        PConvLoss()(output, target, mask[:, :, :16])


# --------------------------------------------------------------------------- VGG features


@pytest.fixture(scope="module")
def vgg():
    if not VGG_PATH.is_file():
        pytest.skip("../shared/weights not found")
    return VGG19Relu31.from_file(VGG_PATH)


@needs_vgg
def test_vgg_loads_strict_frozen_with_documented_shapes(vgg):
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    with torch.no_grad():
        feats = vgg(model_range_to_unit(torch.rand(1, 3, 64, 64) * 2 - 1))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "relu1_2": (1, 64, 64, 64),
        "relu2_2": (1, 128, 32, 32),
        "relu3_1": (1, 256, 16, 16),
    }
    # conv1 is the Caffe preprocessing: RGB [0, 1] -> BGR * 255 - ImageNet mean
    rgb = torch.tensor([0.2, 0.5, 1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(vgg.conv1(rgb).flatten(), torch.tensor([255 - 103.939, 127.5 - 116.779, 51 - 123.68]))


@needs_vgg
def test_perceptual_and_style_are_zero_for_identical_images_and_grow_with_noise(vgg):
    loss = PConvLoss(features=vgg)
    assert loss.uses_features and "relu3_1" in loss.describe()
    _, target, mask = _pair(n=1)
    same = loss(target, target, mask)
    assert same["perceptual"].item() == pytest.approx(0, abs=1e-5)
    assert same["style_out"].item() == pytest.approx(0, abs=1e-7)
    small = loss(*_pair(n=1, noise=0.05))
    large = loss(*_pair(n=1, noise=0.3))
    for key in ("perceptual", "style_out", "style_comp"):
        assert 0 < small[key].item() < large[key].item()


@needs_vgg
def test_total_with_features_is_the_weighted_sum_and_grads_reach_only_the_output(vgg):
    loss = PConvLoss(features=vgg)
    output, target, mask = _pair(n=1)
    output.requires_grad_(True)
    t = loss(output, target, mask)
    expected = (
        t["valid"] + 6 * t["hole"] + 0.05 * t["perceptual"] + 120 * (t["style_out"] + t["style_comp"]) + 0.1 * t["tv"]
    )
    assert t["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    t["total"].backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


@needs_vgg
def test_loss_from_path():
    loss = PConvLoss(VGG_PATH, style_weight=0.0)
    assert loss.uses_features and str(VGG_PATH) in loss.describe()
    with pytest.raises(FileNotFoundError):
        PConvLoss(VGG_PATH.with_name("missing.pth"))
