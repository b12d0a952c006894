"""One reader behind every door: a PNG whose header claims 60000 x 60000 pixels (Pillow calls it a
decompression bomb before any size check of ours could run) is refused with one line by the CLI's
``fill`` and ``unmask``, the Python API's ``Inpainter.fill`` and ``unmask``, and the REST server's
``/inpaint`` and ``/unmask`` (413), and the same reader refuses a file over the caller's own limit."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked import Inpainter, unmask
from unmasked.cli import main
from unmasked.conventions import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    ImageTooLarge,
    UnsupportedImage,
    load_image,
    load_mask,
)

TestClient = pytest.importorskip("fastapi.testclient").TestClient


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


BOMB = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(bytes(10))) + _chunk(b"IEND", b""))


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "bomb.png").write_bytes(BOMB)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    hole = np.zeros((40, 60), np.uint8)
    hole[10:20, 20:40] = 255
    (tmp_path / "img.png").write_bytes(_png(rgb))
    (tmp_path / "mask.png").write_bytes(_png(hole))
    return tmp_path


def test_the_reader_refuses_the_bomb_and_an_image_over_the_limit(inputs):
    for reader in (load_image, load_mask):
        with pytest.raises(ImageTooLarge, match=f"above the limit of {DEFAULT_MAX_PIXELS:,} pixels") as e:
            reader(inputs / "bomb.png")
        assert e.value.size is None and e.value.limit == DEFAULT_MAX_PIXELS
        with pytest.raises(ImageTooLarge, match="60x40 = 2,400 pixels, above the limit of 1,000") as e:
            reader(inputs / "img.png", max_pixels=1000)
        assert e.value.size == (60, 40)
    with pytest.raises(UnsupportedImage, match="not a supported image") as e:
        load_image(b"garbage")
    assert isinstance(e.value, ImageReadError) and not isinstance(e.value, ImageTooLarge)


@pytest.mark.parametrize("args", [["fill", "{d}/bomb.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "telea"],
                                  ["fill", "{d}/img.png", "--mask", "{d}/bomb.png", "-o", "{d}/out.png", "--model", "telea"],
                                  ["unmask", "{d}/bomb.png", "-o", "{d}/out.png", "--region", "landmarks", "--model", "telea"]])
def test_cli(inputs, args):
    r = CliRunner().invoke(main, [a.format(d=inputs) for a in args])
    assert r.exit_code == 1, r.output
    assert "above the limit of 40,000,000 pixels" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (inputs / "out.png").exists()


def test_python_api(inputs):
    with pytest.raises(ImageTooLarge):
        Inpainter("telea").fill(inputs / "bomb.png", inputs / "mask.png")
    with pytest.raises(ImageTooLarge):
        Inpainter("telea").fill(BOMB, inputs / "mask.png")
    with pytest.raises(ImageTooLarge):
        unmask(inputs / "bomb.png", model="telea", region="landmarks")


def test_rest_server(inputs):
    from unmasked.server import create_app

    image, mask = (inputs / "img.png").read_bytes(), (inputs / "mask.png").read_bytes()
    with TestClient(create_app()) as client:
        for files in ({"image": ("b.png", BOMB), "mask": ("m.png", mask)}, {"image": ("a.png", image), "mask": ("b.png", BOMB)}):
            r = client.post("/api/v1/inpaint", files=files, data={"model": "telea"})
            assert r.status_code == 413 and "has too many pixels" in r.json()["detail"], r.text
        r = client.post("/api/v1/unmask", files={"image": ("b.png", BOMB)})
        assert r.status_code == 413 and "has too many pixels" in r.json()["detail"], r.text
