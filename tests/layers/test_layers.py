"""Known-answer tests for the inpainting layers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unmasked.layers import ContextualAttention, GatedConv2d, GatedUpConv2d, PartialConv2d, sn_conv2d


def _pconv(cin=3, cout=4, k=3, **kw):
    torch.manual_seed(0)
    return PartialConv2d(cin, cout, k, padding=k // 2, **kw)


# --------------------------------------------------------------------------- partial conv


def test_partial_conv_all_valid_interior_equals_plain_conv():
    layer = _pconv()
    plain = nn.Conv2d(3, 4, 3, padding=1)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 9, 11)
    out, new_valid = layer(x, torch.ones(2, 1, 9, 11))
    ref = plain(x)
    # interior windows see only valid pixels: ratio 1, identical to nn.Conv2d
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    assert new_valid.eq(1).all()


def test_partial_conv_border_is_renormalised_for_zero_padding():
    layer = _pconv(cin=1, cout=1)
    with torch.no_grad():
        layer.weight.fill_(1 / 9)  # an averaging filter
    x = torch.ones(1, 1, 5, 5)
    out, _ = layer(x, torch.ones(1, 1, 5, 5))
    # zero padding counts as hole: the corner window's 4 valid pixels are scaled by 9/4, so
    # an averaging filter on a constant image stays constant up to the border
    torch.testing.assert_close(out, (1 + layer.bias).expand_as(out))
    plain = F.conv2d(x, layer.weight, layer.bias, padding=1)
    assert plain[0, 0, 0, 0] < out[0, 0, 0, 0]  # a plain conv darkens the corner


def test_partial_conv_known_value_with_one_hole_pixel():
    layer = PartialConv2d(1, 1, 3, padding=1, bias=True)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(0.5)
    x = torch.arange(9.0).view(1, 1, 3, 3)
    valid = torch.ones(1, 1, 3, 3)
    valid[0, 0, 1, 1] = 0  # the centre is a hole
    out, _ = layer(x, valid)
    # centre window: sum of the 8 valid pixels * 9/8, then the bias
    expected = (x.sum() - 4.0) * 9 / 8 + 0.5
    assert out[0, 0, 1, 1].item() == pytest.approx(expected.item())


def test_partial_conv_ignores_pixels_inside_hole():
    layer = _pconv()
    x = torch.randn(1, 3, 12, 12)
    valid = torch.ones(1, 1, 12, 12)
    valid[..., 3:8, 4:9] = 0
    y = x.clone()
    y[..., 3:8, 4:9] = torch.randn(1, 3, 5, 5) * 100
    out_x, m_x = layer(x, valid)
    out_y, m_y = layer(y, valid)
    torch.testing.assert_close(out_x, out_y)
    torch.testing.assert_close(m_x, m_y)


@pytest.mark.parametrize("k,dilation", [(3, 1), (5, 1), (7, 1), (3, 2)])
def test_partial_conv_mask_update_grows_valid_region_by_kernel_reach(k, dilation):
    reach = dilation * (k // 2)
    layer = PartialConv2d(1, 1, k, padding=reach, dilation=dilation)
    valid = torch.zeros(1, 1, 31, 31)
    valid[..., 15, 15] = 1  # a single valid pixel
    _, new_valid = layer(torch.randn(1, 1, 31, 31), valid)
    rows, cols = torch.nonzero(new_valid[0, 0], as_tuple=True)
    assert rows.min() == 15 - reach and rows.max() == 15 + reach
    assert cols.min() == 15 - reach and cols.max() == 15 + reach
    if dilation == 1:  # a full square of side 2*reach+1
        assert int(new_valid.sum()) == (2 * reach + 1) ** 2


def test_partial_conv_output_zero_where_window_fully_hole():
    layer = _pconv()
    valid = torch.ones(1, 1, 16, 16)
    valid[..., 4:12, 4:12] = 0
    out, new_valid = layer(torch.randn(1, 3, 16, 16), valid)
    assert new_valid[..., 5:11, 5:11].eq(0).all()
    assert out[..., 5:11, 5:11].eq(0).all()  # bias not added where there is nothing valid
    assert new_valid[..., 4, 4] == 1


def test_partial_conv_multichannel_mask():
    torch.manual_seed(1)
    layer = PartialConv2d(2, 3, 3, padding=1, multi_channel=True, bias=False)
    x = torch.randn(1, 2, 6, 6)
    valid = torch.ones(1, 2, 6, 6)
    valid[0, 0, 2, 2] = 0  # only channel 0 of one pixel is missing
    out, new_valid = layer(x, valid)
    assert new_valid.shape == (1, 3, 6, 6)
    # window at (2, 2): 18 elements, 17 valid
    expected = F.conv2d(x * valid, layer.weight, padding=1)[0, :, 2, 2] * 18 / 17
    torch.testing.assert_close(out[0, :, 2, 2], expected)


def test_partial_conv_strided_shapes_and_mask_check():
    layer = PartialConv2d(3, 8, 7, stride=2, padding=3)
    out, m = layer(torch.randn(2, 3, 32, 32), torch.ones(2, 1, 32, 32))
    assert out.shape == (2, 8, 16, 16) and m.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="valid mask"):
        layer(torch.randn(2, 3, 32, 32), torch.ones(2, 3, 32, 32))


def test_partial_conv_gradient_does_not_flow_from_hole_pixels():
    layer = _pconv()
    x = torch.randn(1, 3, 10, 10, requires_grad=True)
    valid = torch.ones(1, 1, 10, 10)
    valid[..., 2:6, 2:6] = 0
    out, _ = layer(x, valid)
    out.sum().backward()
    assert x.grad[..., 2:6, 2:6].abs().sum() == 0
    assert x.grad.abs().sum() > 0


# --------------------------------------------------------------------------- gated conv


def test_gated_conv_splits_feature_and_gate():
    torch.manual_seed(0)
    layer = GatedConv2d(3, 5, 3)
    x = torch.randn(2, 3, 8, 8)
    raw = layer.conv(x)
    assert raw.shape[1] == 10
    expected = F.elu(raw[:, :5]) * torch.sigmoid(raw[:, 5:])
    torch.testing.assert_close(layer(x), expected)


def test_gated_conv_shapes_stride_dilation_and_upsampling():
    x = torch.randn(1, 4, 16, 16)
    assert GatedConv2d(4, 6, 5, stride=2)(x).shape == (1, 6, 8, 8)
    assert GatedConv2d(4, 6, 3, dilation=4)(x).shape == (1, 6, 16, 16)
    assert GatedUpConv2d(4, 2)(x).shape == (1, 2, 32, 32)


def test_gated_conv_closed_gate_silences_output():
    layer = GatedConv2d(2, 2, 1)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.bias.copy_(torch.tensor([1.0, 1.0, -1e4, 0.0]))
    out = layer(torch.randn(1, 2, 4, 4))
    assert out[:, 0].abs().max() == 0  # gate sigmoid(-1e4) = 0
    torch.testing.assert_close(out[:, 1], torch.full((1, 4, 4), 0.5))  # ELU(1) * sigmoid(0)


# --------------------------------------------------------------------------- contextual attention


def _feature_scene(seed=0, c=16, size=32):
    """Random features with a hole whose content equals a background region."""
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(1, c, size, size, generator=g)
    mask = torch.zeros(1, 1, size, size)
    mask[..., 12:20, 12:20] = 1
    feat[..., 12:20, 12:20] = feat[..., 2:10, 20:28]  # the hole's (unseen) truth is a copy
    return feat, mask


def test_contextual_attention_copies_matching_background_patch():
    feat, mask = _feature_scene()
    layer = ContextualAttention()
    out = layer(feat, feat, mask)
    # interior of the hole reproduces the identical background region
    interior = (..., slice(14, 18), slice(14, 18))
    torch.testing.assert_close(out[interior], feat[interior], atol=0.05, rtol=0)
    # attention never lands on a patch that overlaps the hole
    att = layer.last_attention[0]  # (Lb, 16, 16), background patches on a 16x16 grid
    hole_patch = att.view(16, 16, 16, 16)[5:11, 5:11]
    assert hole_patch.sum() == 0


def test_contextual_attention_weights_sum_to_one_over_valid_patches():
    feat, mask = _feature_scene(1)
    layer = ContextualAttention()
    layer(feat, feat, mask)
    total = layer.last_attention.sum(dim=1)
    torch.testing.assert_close(total, torch.ones_like(total))


def test_contextual_attention_each_sample_uses_its_own_mask():
    a, mask_a = _feature_scene(2)
    b, _ = _feature_scene(3)
    mask_b = torch.zeros_like(mask_a)
    mask_b[..., 0:10, 16:32] = 1  # a different hole in a different place
    layer = ContextualAttention()
    batch = layer(torch.cat([a, b]), torch.cat([a, b]), torch.cat([mask_a, mask_b]))
    alone_a = layer(a, a, mask_a)
    alone_b = layer(b, b, mask_b)
    torch.testing.assert_close(batch[:1], alone_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[1:], alone_b, atol=1e-5, rtol=1e-5)
    # the first sample's mask applied to the second would give another result
    wrong = layer(b, b, mask_a)
    assert (wrong - alone_b).abs().max() > 1e-2


def test_contextual_attention_no_valid_patch_gives_zeros_not_nan():
    feat = torch.randn(1, 4, 8, 8)
    out = ContextualAttention()(feat, feat, torch.ones(1, 1, 8, 8))
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_contextual_attention_is_differentiable_and_rejects_bad_sizes():
    feat = torch.randn(2, 8, 16, 16, requires_grad=True)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:10, 4:10] = 1
    ContextualAttention()(feat, feat, mask).pow(2).mean().backward()
    assert torch.isfinite(feat.grad).all() and feat.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples of rate"):
        ContextualAttention()(torch.randn(1, 8, 15, 16), torch.randn(1, 8, 15, 16), torch.zeros(1, 1, 15, 16))


# --------------------------------------------------------------------------- spectral norm


def test_spectral_norm_bounds_largest_singular_value():
    torch.manual_seed(0)
    conv = sn_conv2d(8, 16, 5, stride=2, padding=2)
    with torch.no_grad():
        conv.parametrizations.weight.original.mul_(10.0)  # far from normalised
    conv.train()
    x = torch.randn(1, 8, 16, 16)
    for _ in range(30):  # one power iteration per forward pass
        conv(x)
    conv.eval()
    sigma = torch.linalg.matrix_norm(conv.weight.detach().reshape(16, -1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=1e-2)
