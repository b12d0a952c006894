"""`unmasked unmask`: find faces, fill the worn-mask region, paste back."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked.api import load_model
from unmasked.cli import main
from unmasked.conventions import load_image
from unmasked.pipelines.unmask import unmask_array, worn_mask_region


def _masked_face(shared_data, name="00003"):
    img = shared_data / "masked_faces_seg" / "CWM" / "images" / f"{name}.jpg"
    label = np.asarray(Image.open(shared_data / "masked_faces_seg" / "CWM" / "labels" / f"{name}.png"))
    return img, load_image(img).rgb, label == 2


@pytest.mark.data
def test_unmask_fills_the_worn_mask_and_nothing_far_away(shared_data):
    _, rgb, worn = _masked_face(shared_data)
    result = unmask_array(rgb, load_model("telea"))
    assert len(result.faces) == 1
    covered = (result.region & worn).sum() / worn.sum()
    assert covered > 0.95  # the labelled mask fabric is (almost) all replaced
    # every changed pixel lies below the top quarter of the face box (eyebrows, forehead),
    # within the box grown by a quarter: nothing above the eyes or away from the face is touched
    x, y, w, h = result.faces[0].box
    allowed = np.zeros(worn.shape, bool)
    allowed[max(0, y + h // 4) : y + h + h // 4, max(0, x - w // 4) : x + w + w // 4] = True
    assert not (result.region & ~allowed).any()
    assert result.region.mean() < 0.4


def test_region_from_landmarks_covers_mouth_not_eyes():
    from unmasked.masks.face_mask import jittered_mean_landmarks

    lm = jittered_mean_landmarks(128, np.random.default_rng(0), jitter=0.0)
    region = worn_mask_region(lm, 128)
    mouth, nose_tip = lm[48:68].mean(0).round().astype(int), lm[33].round().astype(int)
    eyes = np.concatenate([lm[36:42], lm[42:48]]).round().astype(int)
    assert region[mouth[1], mouth[0]] and region[nose_tip[1], nose_tip[0]]
    assert not region[eyes[:, 1], eyes[:, 0]].any()


def test_no_face_returns_copy_with_note():
    rgb = np.full((64, 64, 3), 120, np.uint8)
    result = unmask_array(rgb, load_model("telea"))
    assert not result.faces and "no face found" in result.note
    np.testing.assert_array_equal(result.image, rgb)
    with pytest.raises(ValueError, match="outside the 64x64 image"):
        unmask_array(rgb, load_model("telea"), boxes=[(40, 40, 50, 50)])


@pytest.mark.data
def test_cli_unmask_with_box_and_mask_output(shared_data, tmp_path):
    img, rgb, _ = _masked_face(shared_data)
    r = CliRunner().invoke(main, ["unmask", str(img), "-o", str(tmp_path / "out.png"), "--model", "telea",
                                  "--box", "40,40,180,180", "--save-mask", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.output
    assert "found by" in r.output and (tmp_path / "m.png").is_file()
    assert load_image(tmp_path / "out.png").rgb.shape == rgb.shape
    bad = CliRunner().invoke(main, ["unmask", str(img), "-o", str(tmp_path / "o.png"), "--model", "telea", "--box", "1,2,3"])
    assert bad.exit_code == 2 and "x,y,w,h" in bad.output
