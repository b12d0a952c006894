"""REST API (unmasked.server): results, every error code, limits, the bounded queue, the static UI."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import struct
import threading
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from unmasked.server import ServerSettings, create_app
from unmasked.server.app import STATIC_DIR

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TestClient = pytest.importorskip("fastapi.testclient").TestClient


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Textured 60x80 RGB: any fill differs from the original inside the hole."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def hole() -> np.ndarray:
    m = np.zeros((60, 80), bool)
    m[20:35, 30:55] = True
    return m


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def files(photo, hole, **extra):
    out = {"image": ("a.png", png(photo), "image/png"), "mask": ("m.png", png(hole.astype(np.uint8) * 255), "image/png")}
    out.update(extra)
    return out


def assert_filled_only_inside(result: np.ndarray, photo: np.ndarray, hole: np.ndarray) -> None:
    assert result.shape == photo.shape
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    assert (result[hole] != photo[hole]).any()


# --------------------------------------------------------------------------- results


def test_health_and_models(client):
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["capacity"] == 2 + 32
    body = client.get("/api/v1/models").json()
    by_name = {m["name"]: m for m in body["models"]}
    assert {"telea", "navier_stokes", "patchmatch", "deepfill_v2_faces128"} <= set(by_name)
    assert by_name["deepfill_v2_faces128"]["face_model"] and by_name["deepfill_v2_faces128"]["working_size"] == 128
    assert not by_name["telea"]["face_model"] and by_name["telea"]["kind"] == "classical"
    assert body["default_fill"] == "auto" and body["default_face"] == "pconv_unet_faces128"
    assert body["default_unmask"] == "pconv_unet_faces128_landmarks"
    assert by_name["pconv_unet_faces128_landmarks"]["uses_landmarks"] and not by_name["pconv_unet_faces128"]["uses_landmarks"]


def test_the_landmark_guided_model_removes_masks_by_default_and_is_refused_by_fill(client, photo, hole):
    """/unmask finds the landmarks the guided model needs and uses it when no model is named; /fill has none
    to give it, so it answers 422 with what to do instead of failing inside the model."""
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))},
                    data={"boxes": "10,5,50,50", "region": "landmarks", "response_format": "json"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "pconv_unet_faces128_landmarks"
    region = decode(base64.b64decode(out["mask"])) > 127
    result = decode(base64.b64decode(out["image"]))
    assert region.any() and (result[region] != photo[region]).any(axis=-1).mean() > 0.5
    np.testing.assert_array_equal(result[~region], photo[~region])
    r = client.post("/api/v1/inpaint", files=files(photo, hole), data={"model": "pconv_unet_faces128_landmarks",
                                                                       "box": "10,0,60,60"})
    assert r.status_code == 422 and "only /unmask finds" in r.json()["detail"]


def test_inpaint_multipart_returns_png_changed_only_in_the_hole(client, photo, hole):
    r = client.post("/api/v1/inpaint", files=files(photo, hole), data={"model": "telea"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-unmasked-model"] == "telea"
    assert float(r.headers["x-unmasked-elapsed-ms"]) > 0
    assert_filled_only_inside(decode(r.content), photo, hole)


def test_inpaint_json_base64_in_and_out(client, photo, hole):
    body = {"image": "data:image/png;base64," + base64.b64encode(png(photo)).decode(),
            "mask": base64.b64encode(png(hole.astype(np.uint8) * 255)).decode(),
            "model": "navier_stokes", "response_format": "json"}
    r = client.post("/api/v1/inpaint", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["width"], out["height"], out["model"], out["note"]) == (80, 60, "navier_stokes", None)
    assert_filled_only_inside(decode(base64.b64decode(out["image"])), photo, hole)
    # the same request with the default response format answers the PNG itself
    body.pop("response_format")
    r = client.post("/api/v1/inpaint", json=body)
    assert r.headers["content-type"] == "image/png"
    assert_filled_only_inside(decode(r.content), photo, hole)


def test_inpaint_keeps_alpha_and_mode(client, photo, hole):
    alpha = np.tile(np.arange(80, dtype=np.uint8) * 3, (60, 1))
    rgba = np.dstack([photo, alpha])
    r = client.post("/api/v1/inpaint", files={**files(photo, hole), "image": ("a.png", png(rgba, "RGBA"))})
    out = decode(r.content)
    assert out.shape == (60, 80, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)
    assert_filled_only_inside(out[..., :3], photo, hole)


def test_empty_mask_copies_with_note(client, photo):
    r = client.post("/api/v1/inpaint", files=files(photo, np.zeros((60, 80), bool)))
    assert r.status_code == 200
    assert "mask is empty" in r.headers["x-unmasked-note"]
    np.testing.assert_array_equal(decode(r.content), photo)


def test_face_model_with_face_square(client, photo, hole):
    """The shipped face model fills the hole inside the given face square; nothing else changes."""
    r = client.post("/api/v1/inpaint", files=files(photo, hole), data={"model": "deepfill_v2_faces128", "box": "10,0,60,60"})
    assert r.status_code == 200, r.text
    assert_filled_only_inside(decode(r.content), photo, hole)
    r = client.post("/api/v1/inpaint", files=files(photo, hole), data={"box": "50,10,40,40"})
    assert r.status_code == 422 and "outside the 80x60 image" in r.json()["detail"]


def test_unmask_with_a_box_returns_region_and_faces(client, photo):
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))},
                    data={"model": "telea", "boxes": "10,5,50,50", "region": "landmarks", "response_format": "json"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["faces"][0]["box"] == [10, 5, 50, 50] and out["faces"][0]["detector"] == "box"
    assert out["faces"][0]["hole_ratio"] > 0.05
    region = decode(base64.b64decode(out["mask"])) > 127
    result = decode(base64.b64decode(out["image"]))
    assert region.any()
    np.testing.assert_array_equal(result[~region], photo[~region])  # changed exactly where the mask says
    assert (result[region] != photo[region]).any(axis=-1).all()
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={"boxes": "50,50,40,40", "model": "telea"})
    assert r.status_code == 422 and "outside the 80x60 image" in r.json()["detail"]


def test_unmask_takes_the_mean_face_choice_and_reports_it(client, photo):
    data = {"model": "telea", "boxes": "10,5,50,50", "region": "landmarks", "response_format": "json"}
    outs = {}
    for choice in ("off", "on"):
        r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_face": choice})
        assert r.status_code == 200, r.text
        assert r.json()["faces"][0]["mean_face"] is (choice == "on")
        outs[choice] = decode(base64.b64decode(r.json()["image"])).astype(int)
    assert (np.abs(outs["on"] - outs["off"]).max(axis=2) > 10).sum() > 50  # the mean face's nose and mouth
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_face": "on",
                                                                                   "mean_texture": "false"})
    assert r.status_code == 200, r.text
    plain = decode(base64.b64decode(r.json()["image"])).astype(int)
    assert (np.abs(plain - outs["on"]).max(axis=2) > 3).sum() > 10  # the textured mean face is the default
    assert (np.abs(plain - outs["off"]).max(axis=2) > 10).sum() > 50  # and the plain one still gives structure
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_texture": "maybe"})
    assert r.status_code == 422 and "mean_texture" in r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_face": "on",
                                                                                   "mean_chroma": "false"})
    assert r.status_code == 200, r.text
    grey = decode(base64.b64decode(r.json()["image"])).astype(int)
    assert (np.abs(grey - outs["on"]).max(axis=2) > 2).sum() > 5  # the lips' colour is the default
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_chroma": "maybe"})
    assert r.status_code == 422 and "mean_chroma" in r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_face": "sometimes"})
    assert r.status_code == 422 and "mean_face" in r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "mean_face": "off", "grain": "false"})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "grain": "sometimes"})
    assert r.status_code == 422 and "grain" in r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "second_look": "false"})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "second_look": "maybe"})
    assert r.status_code == 422 and "second_look" in r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "ear_loops": "false"})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo))}, data={**data, "ear_loops": "maybe"})
    assert r.status_code == 422 and "ear_loops" in r.text


def test_unmask_without_a_face_returns_the_photo_with_a_note(client):
    flat = np.full((64, 64, 3), 120, np.uint8)
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(flat))}, data={"model": "telea"})
    assert r.status_code == 200 and "no face found" in r.headers["x-unmasked-note"]
    assert r.headers["x-unmasked-faces"] == "0"
    np.testing.assert_array_equal(decode(r.content), flat)


def test_face_mask_synthesis(client, photo):
    r = client.post("/api/v1/masks/face", json={"image": base64.b64encode(png(photo)).decode(), "boxes": [[10, 5, 50, 50]],
                                               "kind": "surgical", "response_format": "json"})
    assert r.status_code == 200, r.text
    out = r.json()
    drawn = decode(base64.b64decode(out["mask"])) > 127
    result = decode(base64.b64decode(out["image"]))
    assert 0.02 < drawn.mean() < 0.6
    np.testing.assert_array_equal(result[~drawn], photo[~drawn])
    r = client.post("/api/v1/masks/face", files={"image": ("a.png", png(np.full((64, 64, 3), 90, np.uint8)))})
    assert r.status_code == 422 and "no face found" in r.json()["detail"]


def test_openapi_documents_both_request_kinds(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert body["application/json"]["schema"]["additionalProperties"] is False
    assert "image/png" in spec["paths"]["/api/v1/inpaint"]["post"]["responses"]["200"]["content"]
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------- sketch (DeepFill v2 user-guided)


@pytest.fixture(scope="module")
def sketch_model_path(tiny_sketch_checkpoint):
    return tiny_sketch_checkpoint

@pytest.fixture(scope="module")
def sketch_client(tiny_sketch_checkpoint):
    settings = ServerSettings(models=["telea", "two_face_faces128", "tiny_sketch"],
                              checkpoints={"tiny_sketch": tiny_sketch_checkpoint})
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def sketch() -> np.ndarray:
    """A line across the hole (25 pixels inside it) that also runs out of it on both sides."""
    s = np.zeros((60, 80), bool)
    s[27, 20:65] = True
    s[22:33, 40] = True
    return s


def b64png(array: np.ndarray) -> str:
    return base64.b64encode(png(array)).decode()


def test_models_say_which_take_a_sketch(client, sketch_client):
    by_name = {m["name"]: m for m in sketch_client.get("/api/v1/models").json()["models"]}
    assert by_name["tiny_sketch"]["uses_sketch"] is True and by_name["tiny_sketch"]["kind"] == "trained"
    assert by_name["telea"]["uses_sketch"] is False and by_name["two_face_faces128"]["uses_sketch"] is False
    shipped = {m["name"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert all(isinstance(m["uses_sketch"], bool) for m in shipped.values())
    assert shipped["deepfill_v2_faces128"]["uses_sketch"] is False and shipped["auto"]["uses_sketch"] is False


def test_sketch_guides_the_fill_multipart_and_json(sketch_client, photo, hole, sketch):
    plain = sketch_client.post("/api/v1/inpaint", files=files(photo, hole), data={"model": "tiny_sketch"})
    r = sketch_client.post("/api/v1/inpaint", files=files(photo, hole, sketch=("s.png", png(sketch.astype(np.uint8) * 255))),
                           data={"model": "tiny_sketch"})
    assert plain.status_code == 200 and r.status_code == 200, r.text
    assert "x-unmasked-sketch-pixels" not in plain.headers
    assert r.headers["x-unmasked-sketch-pixels"] == str((sketch & hole).sum()) and "x-unmasked-note" not in r.headers
    guided, unguided = decode(r.content), decode(plain.content)
    assert_filled_only_inside(guided, photo, hole)
    assert (guided[hole] != unguided[hole]).any(axis=-1).mean() > 0.05  # the sketch reached the model

    body = {"image": b64png(photo), "mask": b64png(hole.astype(np.uint8) * 255), "model": "tiny_sketch",
            "sketch": "data:image/png;base64," + b64png(sketch.astype(np.uint8) * 255), "response_format": "json"}
    out = sketch_client.post("/api/v1/inpaint", json=body).json()
    assert out["sketch_pixels"] == (sketch & hole).sum() and out["note"] is None
    np.testing.assert_array_equal(decode(base64.b64decode(out["image"])), guided)  # JSON = multipart
    body.pop("sketch")
    assert sketch_client.post("/api/v1/inpaint", json=body).json()["sketch_pixels"] is None


def test_sketch_is_cropped_with_the_face_square(sketch_client, sketch_model_path, photo, hole, sketch):
    from unmasked.checkpoint import load_checkpoint
    from unmasked.pipelines.fill import fill_array

    r = sketch_client.post("/api/v1/inpaint", files=files(photo, hole, sketch=("s.png", png(sketch.astype(np.uint8) * 255))),
                           data={"model": "tiny_sketch", "box": "20,0,60,60"})
    assert r.status_code == 200, r.text
    expected = photo.copy()
    expected[:, 20:80] = fill_array(photo[:, 20:80].copy(), hole[:, 20:80], load_checkpoint(sketch_model_path),
                                    sketch=sketch[:, 20:80]).image
    np.testing.assert_array_equal(decode(r.content), expected)


def test_a_sketch_outside_the_hole_is_said_to_be_unused(sketch_client, photo, hole):
    away = np.zeros((60, 80), bool)
    away[5, 5:70] = True
    r = sketch_client.post("/api/v1/inpaint", files=files(photo, hole, sketch=("s.png", png(away.astype(np.uint8) * 255))),
                           data={"model": "tiny_sketch"})
    assert r.status_code == 200 and r.headers["x-unmasked-sketch-pixels"] == "0"
    assert "the sketch has no line inside the hole" in r.headers["x-unmasked-note"]


@pytest.mark.parametrize(
    "model, extra, status, message",
    [
        ("telea", {}, 422, "model 'telea' has no sketch channel (models that have one: tiny_sketch); leave the sketch out"),
        ("two_face_faces128", {"reference": "photo"}, 422, "a sketch and a reference photo cannot be combined"),
        ("tiny_sketch", {"reference": "photo"}, 422, "a sketch and a reference photo cannot be combined"),
        ("tiny_sketch", {"sketch": "narrow"}, 422, "sketch size 70x60 does not match image size 80x60"),
        ("tiny_sketch", {"sketch": "garbage"}, 415, "sketch is not a supported image"),
        ("tiny_sketch", {"sketch": "truncated"}, 415, "sketch: "),
    ],
)
@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_sketch_errors(sketch_client, photo, hole, sketch, model, extra, status, message, kind):
    line = png(sketch.astype(np.uint8) * 255)
    blobs = {"sketch": {"narrow": png(sketch[:, :70].astype(np.uint8) * 255), "garbage": b"not an image at all",
                        "truncated": line[: len(line) // 2]}.get(extra.get("sketch"), line)}
    if "reference" in extra:
        blobs["reference"] = png(photo)
    if kind == "multipart":
        r = sketch_client.post("/api/v1/inpaint", data={"model": model},
                               files=files(photo, hole, **{k: (f"{k}.png", v) for k, v in blobs.items()}))
    else:
        body = {"image": b64png(photo), "mask": b64png(hole.astype(np.uint8) * 255), "model": model}
        r = sketch_client.post("/api/v1/inpaint", json={**body, **{k: base64.b64encode(v).decode() for k, v in blobs.items()}})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_sketch_refusals_elsewhere(client, photo, hole, sketch):
    line = ("s.png", png(sketch.astype(np.uint8) * 255))
    with TestClient(create_app(ServerSettings(models=["telea"]))) as only_telea:
        r = only_telea.post("/api/v1/inpaint", files=files(photo, hole, sketch=line))
        assert r.status_code == 422 and "(no model on this server has one)" in r.json()["detail"]
    r = client.post("/api/v1/inpaint", json={"image": b64png(photo), "mask": b64png(hole.astype(np.uint8) * 255),
                                             "sketch": "***"})
    assert r.status_code == 422 and "sketch: not valid base64" in r.json()["detail"]
    r = client.post("/api/v1/unmask", files={"image": ("a.png", png(photo)), "sketch": line})
    assert r.status_code == 422 and "sketch: unknown file field" in r.json()["detail"]  # /unmask takes no sketch


def test_checkpoint_names_must_not_shadow_models(sketch_model_path):
    from unmasked.server.worker import ModelStore

    with pytest.raises(ValueError, match="telea already name models of the server"):
        ModelStore(checkpoints={"telea": sketch_model_path})


def test_openapi_documents_the_sketch_field(client):
    body = client.get("/openapi.json").json()["paths"]["/api/v1/inpaint"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["sketch"] == {"type": "string", "format": "binary"}
    assert "sketch" not in body["multipart/form-data"]["schema"]["required"]
    assert "uses_sketch" in body["application/json"]["schema"]["properties"]["sketch"]["description"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "data, extra_files, status, message",
    [
        ({"colour": "red"}, {}, 422, "colour: unknown field"),
        ({"response_format": "gif"}, {}, 422, "response_format"),
        ({"box": "1,2,3"}, {}, 422, "box"),
        ({"model": "nope"}, {}, 404, "unknown model 'nope'; available:"),
        ({}, {"extra": ("x.png", b"123")}, 422, "extra: unknown file field"),
        ({}, {"reference": ("r.png", b"123")}, 422, "does not use a reference photo"),
        ({}, {"image": ("a.png", b"definitely not an image")}, 415, "image is not a supported image"),
        ({}, {"mask": ("m.txt", b"\x00\x01\x02")}, 415, "mask is not a supported image"),
    ],
)
def test_multipart_errors(client, photo, hole, data, extra_files, status, message):
    r = client.post("/api/v1/inpaint", files={**files(photo, hole), **extra_files}, data=data)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"extra_field": 1}, 422, "extra_field: unknown field"),
        ({"image": "***"}, 422, "image: not valid base64"),
        ({"mask": None}, 422, "mask"),
        ({"model": "deepfill_v2"}, 404, "unknown model 'deepfill_v2'"),
        ({"image": base64.b64encode(b"GIF89a garbage").decode()}, 415, "not a supported image"),
    ],
)
def test_json_errors(client, photo, hole, change, status, message):
    body = {"image": base64.b64encode(png(photo)).decode(), "mask": base64.b64encode(png(hole.astype(np.uint8) * 255)).decode()}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post("/api/v1/inpaint", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_unsupported_content_type_and_bad_json(client):
    r = client.post("/api/v1/inpaint", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data or application/json" in r.json()["detail"]
    r = client.post("/api/v1/inpaint", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_truncated_image_is_415(client, photo, hole):
    data = png(photo)
    r = client.post("/api/v1/inpaint", files={**files(photo, hole), "image": ("a.png", data[: len(data) // 2])})
    assert r.status_code == 415 and "cannot decode" in r.json()["detail"]


def test_size_mismatch_is_422(client, photo, hole):
    r = client.post("/api/v1/inpaint", files=files(photo, hole[:, :70]))
    assert r.status_code == 422
    assert "mask size 70x60 does not match image size 80x60" in r.json()["detail"]


def test_full_mask_is_400(client, photo):
    r = client.post("/api/v1/inpaint", files=files(photo, np.ones((60, 80), bool)))
    assert r.status_code == 400 and "covers the whole image" in r.json()["detail"]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height, and no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_too_many_pixels_is_413_from_the_header(client, photo, hole):
    # 6000 x 6000 claimed in a 57-byte file: only the header is read, or this would be a 415
    r = client.post("/api/v1/inpaint", files={**files(photo, hole), "image": ("big.png", _png_header_only(6000, 6000))})
    assert r.status_code == 413, r.text
    assert "6000x6000 = 36,000,000 pixels, above this server's limit of 16,000,000" in r.json()["detail"]
    r = client.post("/api/v1/inpaint", files={**files(photo, hole), "mask": ("big.png", _png_header_only(10**5, 10**5))})
    assert r.status_code == 413 and "mask has too many pixels" in r.json()["detail"]
    with TestClient(create_app(ServerSettings(max_pixels=4000))) as small:
        r = small.post("/api/v1/inpaint", files=files(photo, hole))
        assert r.status_code == 413 and "80x60 = 4,800 pixels" in r.json()["detail"]


def test_body_too_large_is_413(photo, hole):
    with TestClient(create_app(ServerSettings(max_body_bytes=20_000))) as c:
        big = np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)  # ~43 kB PNG
        r = c.post("/api/v1/inpaint", files=files(big, np.zeros((120, 120), bool)))
        assert r.status_code == 413 and "20,000 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            for _ in range(10):
                yield b"x" * 5000

        r = c.post("/api/v1/inpaint", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "20,000 bytes" in r.json()["detail"]
        assert c.post("/api/v1/inpaint", files=files(photo, hole)).status_code == 200  # small ones still pass


# --------------------------------------------------------------------------- concurrency


def test_queue_full_is_503_and_recovers(photo, hole):
    app = create_app(ServerSettings(workers=1, queue_size=1))
    gate = threading.Event()
    real_get = app.state.store.get

    def slow_get(name):  # hold the worker until the test has seen the 503
        gate.wait(30)
        return real_get(name)

    app.state.store.get = slow_get

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            tasks = [asyncio.create_task(c.post("/api/v1/inpaint", files=files(photo, hole))) for _ in range(3)]
            while app.state.pool.pending < 2:
                await asyncio.sleep(0.01)
            done, _ = await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            first_done = [t.result() for t in done]
            gate.set()
            results = await asyncio.gather(*tasks)
            after = await c.post("/api/v1/inpaint", files=files(photo, hole))
            return first_done, results, after

    first_done, results, after = asyncio.run(run())
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 503]
    assert [r.status_code for r in first_done] == [503]  # refused at once, not after waiting
    busy = next(r for r in results if r.status_code == 503)
    assert "server busy" in busy.json()["detail"] and busy.headers["retry-after"] == "1"
    assert after.status_code == 200 and app.state.pool.pending == 0


def test_concurrent_requests_give_the_sequential_answers(photo, hole):
    app = create_app(ServerSettings(workers=2, queue_size=16))
    masks = []
    for k in range(8):
        m = np.zeros((60, 80), bool)
        m[5 + 5 * k : 15 + 5 * k, 10:60] = True
        masks.append(m)

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(
                *[c.post("/api/v1/inpaint", files=files(photo, m), data={"model": "telea"}) for m in masks])

    concurrent = asyncio.run(run())
    from unmasked.api import load_model
    from unmasked.pipelines.fill import fill_array

    telea = load_model("telea")
    for m, r in zip(masks, concurrent, strict=True):
        assert r.status_code == 200
        np.testing.assert_array_equal(decode(r.content), fill_array(photo, m, telea).image)


# --------------------------------------------------------------------------- static UI


def test_web_ui_is_served_without_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/app.js"' in page.text
    for name in ("app.js", "style.css", "study.js"):
        assert client.get(f"/{name}").status_code == 200
    assert client.get("/study").status_code == 200
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), f"{path.name} loads something from another host"
        assert not re.search(r"https?://", text), f"{path.name} names another host"
        assert not re.search(r"@import|url\(", text), path.name


# --------------------------------------------------------------------------- load (slow)


@pytest.mark.slow
def test_load_test_benchmark_runs_clean(tmp_path):
    """benchmarks/load_test.py at a small scale: no failures, no 5xx, memory flat between rounds."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "load.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "load_test.py"
    r = subprocess.run([sys.executable, str(script), "--clients", "8", "--requests", "5", "--rounds", "3",
                        "--size", "128", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [round_["status"] for round_ in result["rounds"]] == [{"200": 40}] * 3
    rss = [round_["rss_after_mb"] for round_ in result["rounds"]]
    assert rss[-1] < rss[0] * 1.15 + 10, rss  # no growth from round to round


# --------------------------------------------------------------------------- a face square on the reference


@pytest.fixture(scope="module")
def face_and_group():
    """The astronaut's face (256², a hole over the mouth) and a reference photo with two faces:
    hers, small, on the left (face square 0,48,160,160) and a larger mirrored one on the right."""
    from skimage import data

    crop = np.ascontiguousarray(data.astronaut()[:256, 96:352])
    group = np.full((256, 416, 3), 90, np.uint8)
    group[48:208, :160] = np.asarray(Image.fromarray(crop).resize((160, 160), Image.BILINEAR))
    group[:, 160:] = crop[:, ::-1]
    hole = np.zeros((256, 256), bool)
    hole[130:175, 100:170] = True
    return crop, hole, group


@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_inpaint_uses_the_face_square_on_the_reference(client, face_and_group, kind, monkeypatch):
    from unmasked.server.routes import fill as fill_route

    crop, hole, group = face_and_group
    calls = []
    real = fill_route.inpaint_image
    monkeypatch.setattr(fill_route, "inpaint_image", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    if kind == "multipart":
        r = client.post("/api/v1/inpaint", files=files(crop, hole, reference=("g.png", png(group))),
                        data={"model": "two_face_faces128", "reference_box": "0,48,160,160"})
    else:
        r = client.post("/api/v1/inpaint", json={"image": b64png(crop), "mask": b64png(hole.astype(np.uint8) * 255),
                                                 "reference": b64png(group), "model": "two_face_faces128",
                                                 "reference_box": [0, 48, 160, 160]})
    assert r.status_code == 200, r.text
    assert calls[-1]["reference_box"] == (0, 48, 160, 160)
    assert "filled with the reference photo" in r.headers["x-unmasked-note"]
    out = decode(r.content)
    assert np.array_equal(out[~hole], crop[~hole]) and not np.array_equal(out[hole], crop[hole])


@pytest.mark.parametrize(
    "route, data, with_reference, message",
    [
        ("inpaint", {"reference_box": "0,48,160,160"}, False, "reference_box needs a reference photo"),
        ("inpaint", {"reference_box": "300,0,200,200"}, True, "lies outside the 416x256 reference photo"),
        ("inpaint", {"reference_box": "0,48,160"}, True, "reference_box"),
        ("unmask", {"reference_box": "0,48,160,160"}, False, "a reference face square needs a reference photo"),
        ("unmask", {"reference_box": "300,0,200,200", "boxes": "60,40,150,150"}, True, "lies outside the 416x256"),
    ],
)
def test_reference_face_square_errors_are_422(client, face_and_group, route, data, with_reference, message):
    crop, hole, group = face_and_group
    parts = files(crop, hole) if route == "inpaint" else {"image": ("a.png", png(crop))}
    if with_reference:
        parts["reference"] = ("g.png", png(group))
    r = client.post(f"/api/v1/{route}", files=parts, data={"model": "two_face_faces128", **data})
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_a_reference_photo_without_a_face_is_a_400_not_a_500(client, face_and_group):
    crop, hole, _ = face_and_group
    grey = np.full((96, 96, 3), 127, np.uint8)
    r = client.post("/api/v1/inpaint", files=files(crop, hole, reference=("g.png", png(grey))),
                    data={"model": "two_face_faces128"})
    assert r.status_code == 400, r.text
    assert "no face found in the reference photo" in r.json()["detail"]
