"""The 256² face refiner: a frozen coarse model + a refinement network that starts as the identity."""

import pytest
import torch
import torch.nn.functional as F

from unmasked import create_model, load_checkpoint, save_checkpoint
from unmasked.checkpoint import build_model
from unmasked.conventions import composite


@pytest.fixture(scope="module")
def refiner():
    torch.manual_seed(0)
    return build_model("face_refiner", channels=8, blocks=2, working_size=256)


def _batch():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 256, 256, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 256, 256)
    mask[:, :, 140:220, 70:190] = 1
    return image, mask


def test_untrained_refiner_returns_the_coarse_fill_upsampled(refiner):
    image, mask = _batch()
    with torch.no_grad():
        out = refiner.eval()(image * (1 - mask), mask)
        small = F.interpolate(image * (1 - mask), scale_factor=0.5, mode="area")
        small_mask = (F.interpolate(mask, scale_factor=0.5, mode="area") > 0).float()
        coarse = refiner.coarse_model(small * (1 - small_mask), small_mask).image
    up = F.interpolate(coarse, size=(256, 256), mode="bilinear", align_corners=False)
    # the last convolution starts at zero: the refined fill is the coarse one, known pixels kept
    assert torch.equal(out.image, out.coarse)
    assert torch.allclose(out.image, composite(up, image * (1 - mask), mask), atol=1e-6)


def test_coarse_model_is_frozen_and_not_saved(refiner, tmp_path):
    coarse = refiner.coarse_model
    assert not any(p.requires_grad for p in coarse.parameters())
    assert not any(k.startswith("coarse") for k in refiner.state_dict())
    refiner.train()
    assert refiner.training and not coarse.training  # BatchNorm statistics of the coarse model never move
    before = {k: v.clone() for k, v in coarse.state_dict().items()}
    image, mask = _batch()
    refiner(image * (1 - mask), mask).image.mean().backward()
    assert all(torch.equal(before[k], v) for k, v in coarse.state_dict().items())
    assert all(p.grad is None for p in coarse.parameters())
    path = save_checkpoint(refiner, tmp_path / "r.safetensors")
    assert path.stat().st_size < 500_000  # the refiner's tensors only, not the 9 MB coarse model
    assert isinstance(load_checkpoint(path), type(refiner))


def test_refiner_learns_a_residual(refiner):
    image, mask = _batch()
    model = build_model("face_refiner", channels=8, blocks=1, working_size=256).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(5):
        out = model(image * (1 - mask), mask)
        loss = ((out.image - image).abs() * mask).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_bad_base_and_size_are_refused():
    with pytest.raises(ValueError, match="built on a frozen coarse model"):
        create_model("face_refiner")  # the registry alone does not load weights
    with pytest.raises(ValueError, match="neither a shipped preset"):
        build_model("face_refiner", base="no_such_model")
    with pytest.raises(ValueError, match="multiple of 128"):
        build_model("face_refiner", working_size=200)
    with pytest.raises(ValueError, match="reference"):
        m = build_model("face_refiner", channels=8, blocks=1)
        image, mask = _batch()
        m(image, mask, reference=image)
