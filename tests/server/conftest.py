"""Fixtures of the server tests: a tiny sketch model for the sketch field and the Sketch pen."""

import pytest


@pytest.fixture(scope="session")
def tiny_sketch_checkpoint(tmp_path_factory):
    """Path of an untrained DeepFill v2 with a sketch channel (fixed weights).

    Its conv weights are scaled up: with PyTorch's default init the 20-odd gated layers forget
    their input (a sketch changes the output by ~1e-8, lost in uint8), so nothing could be seen.
    """
    import torch

    from unmasked.checkpoint import save_checkpoint
    from unmasked.registry import create_model

    torch.manual_seed(0)
    model = create_model("deepfill_v2", cnum=8, working_size=64, attention=False, sketch=True)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 4:
                p.mul_(6.0)
    path = tmp_path_factory.mktemp("sketch") / "tiny_sketch.safetensors"
    return save_checkpoint(model, path, metadata={"data": "nothing (untrained test model)"})
