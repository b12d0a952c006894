"""The scene layout trainer: it learns, and a run that stops and goes on equals one that never stopped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmasked.checkpoint import load_checkpoint
from unmasked.training.scene_layout import main, train


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for k in range(5):  # a horizon: sky above, ground below, at a different height in each photo
        y = np.mgrid[0:96, 0:128][0]
        sky = y < 30 + 9 * k
        base = np.where(sky[..., None], [70, 130, 220], [90, 150, 40]).astype(float) + rng.normal(0, 2, (96, 128, 3))
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(root / f"p{k}.png")
    return root


def _weights(path: Path) -> dict:
    return {k: v.clone() for k, v in load_checkpoint(path).state_dict().items()}


def test_resume_equals_an_unbroken_run(photos: Path, tmp_path: Path) -> None:
    kw = dict(scenes=str(photos), photos="", batch=2, ckpt_every=1, log_every=1, base_channels=8)
    whole = _weights(train(tmp_path / "whole", max_steps=3, **kw))
    train(tmp_path / "parts", max_steps=2, **kw)
    parts = _weights(train(tmp_path / "parts", max_steps=3, **kw))
    assert whole.keys() == parts.keys()
    for k in whole:
        assert np.array_equal(whole[k].numpy(), parts[k].numpy()), k
    rows = (tmp_path / "parts" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3"]


def test_it_learns_to_beat_its_telea_start(photos: Path, tmp_path: Path) -> None:
    train(tmp_path / "run", scenes=str(photos), photos="", batch=8, max_steps=150, lr=1e-3, log_every=150,
          base_channels=8)
    last = (tmp_path / "run" / "log.csv").read_text().splitlines()[-1].split(",")
    val, start = float(last[2]), float(last[3])
    assert val < 0.9 * start, (val, start)


def test_export_writes_fp16(photos: Path, tmp_path: Path) -> None:
    train(tmp_path / "run", scenes=str(photos), photos="", batch=2, max_steps=1)
    main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "x.safetensors")])
    model = load_checkpoint(tmp_path / "x.safetensors")
    assert model.registry_name == "scene_layout"
