"""Checks every registered learned model must pass: shape, finiteness, gradients, round trip."""

import pytest
import torch

from unmasked import create_model, list_models, load_checkpoint, save_checkpoint

# a small configuration per model; a new model must add one here
SMALL = {
    "pconv_unet": {"base_channels": 8, "max_channels": 16, "depth": 3, "working_size": 32},
    "deepfill_v2": {"cnum": 8, "working_size": 32},
    "two_face": {"cnum": 8, "working_size": 32},
    # its coarse stage is a trained model: the shipped 128² face preset (loaded, frozen)
    "face_refiner": {"base": "pconv_unet_faces128", "channels": 8, "blocks": 1, "working_size": 128},
}


def test_every_learned_model_has_a_small_config():
    assert set(list_models(trainable=True)) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shape_finiteness_gradients_and_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name])
    m = model.multiple
    h, w = 2 * max(m, 8), 3 * max(m, 8)
    image = torch.rand(2, 3, h, w) * 2 - 1
    mask = torch.zeros(2, 1, h, w)
    mask[0, :, h // 4 : h // 2, w // 4 : w // 2] = 1
    mask[1, :, h // 2 :, : w // 3] = 1
    model.train()
    extra = {"reference": image.flip(-1)} if model.uses_reference else {}
    out = model(image * (1 - mask), mask, **extra)
    assert out.image.shape == image.shape and torch.isfinite(out.image).all()
    assert out.image.abs().max() <= 1
    out.image.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    model.eval()
    path = save_checkpoint(model, tmp_path / f"{name}.safetensors")
    loaded = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(model(image, mask, **extra).image, loaded(image, mask, **extra).image)
