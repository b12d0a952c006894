"""Shared fixtures: where the research data lives (outside the repo) and small synthetic inputs."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test with a reason when it is absent."""
    if not DATA.is_dir():
        pytest.skip("../shared/data not found: research data is kept outside the repo (present in CI)")
    return DATA


@pytest.fixture
def identity_folder(tmp_path) -> Path:
    """10 identities x 3 images of 40x30 px, each identity with its own base colour."""
    root = tmp_path / "ids"
    rng = np.random.default_rng(0)
    for i in range(10):
        d = root / f"{1000 + i}"
        d.mkdir(parents=True)
        for k in range(3):
            img = np.clip(rng.normal(20 * i + 30, 20, (30, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{k}.jpg")
    return root
