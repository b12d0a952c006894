"""Model registry and self-describing safetensors checkpoints."""

import pickle

import pytest
import torch
from torch import nn

import unmasked
from unmasked import registry
from unmasked.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_info, save_checkpoint
from unmasked.models.base import InpaintModel, InpaintOutput


class _Tiny(InpaintModel):
    """A two-layer test model."""

    multiple = 4

    def __init__(self, width: int = 4, use_bn: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.BatchNorm2d(width) if use_bn else nn.Identity(),
                                 nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, image, mask, reference=None):
        return InpaintOutput(torch.tanh(self.net(torch.cat([image * (1 - mask), mask], 1))))


@pytest.fixture
def tiny_name():
    name = "_test_tiny"
    registry.register_model(name)(_Tiny)
    yield name
    registry._REGISTRY.pop(name, None)


def test_create_model_records_config(tiny_name):
    model = unmasked.create_model(tiny_name, width=6)
    assert isinstance(model, _Tiny) and model.net[0].out_channels == 6
    assert model.config == {"name": tiny_name, "kwargs": {"width": 6}}
    assert tiny_name in unmasked.list_models()


def test_unknown_model_lists_valid_names(tiny_name):
    with pytest.raises(registry.UnknownModelError, match=f"available: .*{tiny_name}"):
        unmasked.create_model("no_such_model")


def test_bad_kwargs_name_accepted_arguments(tiny_name):
    with pytest.raises(ValueError, match="accepts: width, use_bn"):
        unmasked.create_model(tiny_name, depth=3)


def test_register_rejects_non_models_and_name_clashes(tiny_name):
    with pytest.raises(TypeError):
        registry.register_model("_bad")(nn.Conv2d)

    class Other(InpaintModel):
        pass

    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(tiny_name)(Other)


def _trained(name):
    torch.manual_seed(0)
    model = unmasked.create_model(name, width=5)
    model.train()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    m = (torch.rand(2, 1, 8, 8) > 0.5).float()
    model(x, m)  # updates BN running statistics, so buffers differ from their defaults
    return model.eval(), x, m


def test_checkpoint_round_trip_is_bit_exact(tiny_name, tmp_path):
    model, x, m = _trained(tiny_name)
    path = save_checkpoint(model, tmp_path / "w.safetensors", metadata={"steps": 7})
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(model(x, m).image, loaded(x, m).image)
    assert read_checkpoint_info(path) == {"model": tiny_name, "kwargs": {"width": 5}, "metadata": {"steps": 7}}
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left behind


def test_fp16_checkpoint_is_half_size_and_close(tiny_name, tmp_path):
    model, x, m = _trained(tiny_name)
    full = save_checkpoint(model, tmp_path / "f32.safetensors")
    half = save_checkpoint(model, tmp_path / "f16.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    loaded = load_checkpoint(half)
    assert next(loaded.parameters()).dtype == torch.float32
    torch.testing.assert_close(loaded(x, m).image, model(x, m).image, atol=5e-3, rtol=0)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_files_are_refused_without_executing(tiny_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps({"w": _Exploit()}))
    zipped = tmp_path / "evil.pt"
    torch.save({"w": _Exploit()}, zipped)
    for path in (raw, zipped):
        with pytest.raises(CheckpointError, match="pickle"):
            load_checkpoint(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


@pytest.mark.parametrize("low_bytes", [b"\x80", b"PK"])
def test_a_checkpoint_whose_header_length_starts_like_a_pickle_still_loads(tiny_name, tmp_path, low_bytes):
    """The first bytes of a safetensors file are its header length (little-endian): for one file
    in 256 that is 0x80, the byte a pickle starts with (and "PK" is a valid length too)."""
    import struct

    model, x, m = _trained(tiny_name)
    path = tmp_path / "w.safetensors"
    save_checkpoint(model, path, metadata={"pad": ""})
    base = struct.unpack("<Q", path.read_bytes()[:8])[0]
    modulus = 256 ** len(low_bytes)
    target = base + (int.from_bytes(low_bytes, "little") - base) % modulus + modulus  # above the base
    for pad in range(target - base - 16, target - base + 16):  # the header is padded to 8 bytes
        save_checkpoint(model, path, metadata={"pad": "x" * pad})
        if path.read_bytes()[: len(low_bytes)] == low_bytes:
            break
    assert path.read_bytes()[: len(low_bytes)] == low_bytes
    assert torch.equal(load_checkpoint(path)(x, m).image, model(x, m).image)


def test_wrong_checkpoints_give_clear_errors(tiny_name, tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not an unmasked checkpoint"):
        load_checkpoint(plain)
    model, _, _ = _trained(tiny_name)
    path = save_checkpoint(model, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, width=7)  # shapes no longer match
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, use_bn=False)  # BN tensors unexpected
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "short.bin").write_bytes(b"abc")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "short.bin")


def test_interpolated_checkpoint_lies_between_its_ends(tiny_name, tmp_path):
    from unmasked.checkpoint import interpolate_checkpoints

    base, _, _ = _trained(tiny_name)
    tuned = unmasked.create_model(tiny_name, width=5).eval()  # other weights, default BN statistics
    a = save_checkpoint(base, tmp_path / "a.safetensors", metadata={"inference": {"classical_blend": {
        "method": "navier_stokes", "width": 4}}})
    b = save_checkpoint(tuned, tmp_path / "b.safetensors")
    ends = [interpolate_checkpoints(a, b, t) for t in (0.0, 1.0)]
    for end, src in zip(ends, (base, tuned), strict=True):
        for key, value in src.state_dict().items():
            assert torch.equal(end.state_dict()[key], value), key
    mid = interpolate_checkpoints(a, b, 0.25).state_dict()
    w_a, w_b = base.net[0].weight.detach(), tuned.net[0].weight.detach()
    torch.testing.assert_close(mid["net.0.weight"], 0.75 * w_a + 0.25 * w_b)
    torch.testing.assert_close(mid["net.1.running_var"], 0.75 * base.net[1].running_var + 0.25 * tuned.net[1].running_var)
    assert ends[0].classical_blend == {"method": "navier_stokes", "width": 4}  # base's inference metadata kept
    other = save_checkpoint(unmasked.create_model(tiny_name, width=6), tmp_path / "c.safetensors")
    with pytest.raises(CheckpointError, match="different tensors"):
        interpolate_checkpoints(a, other, 0.5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        interpolate_checkpoints(a, b, 1.5)
