"""`unmasked unmask`: find faces, find the worn mask (segmenter or landmarks), fill, paste back."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked.api import load_model
from unmasked.cli import main
from unmasked.conventions import load_image, save_image
from unmasked.faces.mean_face import BAND_THRESHOLD
from unmasked.models.base import SegmentModel
from unmasked.pipelines.unmask import unmask_array, worn_mask_region


def _masked_face(shared_data, name="00003"):
    img = shared_data / "masked_faces_seg" / "CWM" / "images" / f"{name}.jpg"
    label = np.asarray(Image.open(shared_data / "masked_faces_seg" / "CWM" / "labels" / f"{name}.png"))
    return img, load_image(img).rgb, label == 2


@pytest.mark.data
@pytest.mark.parametrize("region", ["segmenter", "landmarks"])
def test_unmask_fills_the_worn_mask_and_nothing_far_away(shared_data, region):
    _, rgb, worn = _masked_face(shared_data)
    result = unmask_array(rgb, load_model("telea"), region=region)
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
    assert result.faces[0].mask_found and result.masks[0].shape == worn.shape
    if region == "segmenter":  # the detected mask itself matches the label
        inter = (result.masks[0] & worn).sum()
        assert inter / (result.masks[0] | worn).sum() > 0.75


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
    assert not result.faces and not result.masks and "no face found" in result.note
    np.testing.assert_array_equal(result.image, rgb)
    with pytest.raises(ValueError, match="outside the 64x64 image"):
        unmask_array(rgb, load_model("telea"), boxes=[(40, 40, 50, 50)])


@pytest.mark.parametrize("option", ["second_look", "ear_loops", "mean_texture", "mean_chroma"])
def test_cli_unmask_passes_the_on_off_choices(tmp_path, monkeypatch, option):
    import unmasked.cli.unmask as cli

    seen = []
    real = cli.unmask_array
    monkeypatch.setattr(cli, "unmask_array", lambda *a, **k: seen.append(k[option]) or real(*a, **k))
    save_image(tmp_path / "flat.png", np.full((64, 64, 3), 120, np.uint8))
    flag = "--" + option.replace("_", "-")
    for given, want in ((flag.replace("--", "--no-"), False), (flag, True), (None, True)):
        r = CliRunner().invoke(main, ["unmask", str(tmp_path / "flat.png"), "-o", str(tmp_path / "o.png"), "--model",
                                      "telea", *([given] if given else [])])
        assert r.exit_code == 0 and "no face found" in r.output, r.output
        assert seen[-1] is want


@pytest.mark.data
def test_cli_unmask_with_box_and_mask_output(shared_data, tmp_path):
    img, rgb, _ = _masked_face(shared_data)
    r = CliRunner().invoke(main, ["unmask", str(img), "-o", str(tmp_path / "out.png"), "--model", "telea",
                                  "--box", "40,40,180,180", "--save-mask", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.output
    assert "found by" in r.output and "mask found" in r.output
    written = load_image(tmp_path / "m.png").rgb[..., 0] > 127  # the detected worn mask, white
    assert written.shape == rgb.shape[:2] and 0.05 < written.mean() < 0.3
    assert load_image(tmp_path / "out.png").rgb.shape == rgb.shape
    bad = CliRunner().invoke(main, ["unmask", str(img), "-o", str(tmp_path / "o.png"), "--model", "telea", "--box", "1,2,3"])
    assert bad.exit_code == 2 and "x,y,w,h" in bad.output


# --------------------------------------------------------------------------- segmenter decisions

ASTRONAUT_BOX = (175, 76, 91, 91)  # skimage's astronaut: Eileen Collins, no mask (public domain, NASA)


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def test_face_without_mask_is_left_untouched(astronaut):
    import unmasked

    result = unmasked.unmask(astronaut, model="telea", boxes=[ASTRONAUT_BOX])  # the Python API
    assert len(result.faces) == 1 and not result.faces[0].mask_found
    assert result.faces[0].mask_area < 0.01 and result.faces[0].hole_ratio == 0
    np.testing.assert_array_equal(result.image, astronaut)
    assert not result.masks[0].any() and not result.region.any()
    assert "no worn mask found" in result.note


def test_synthetic_mask_is_found_and_only_its_surroundings_change(astronaut):
    import cv2

    from unmasked.faces import align_face, face_from_box
    from unmasked.masks.face_mask import put_face_mask
    from unmasked.pipelines.unmask import DILATE

    face = face_from_box(astronaut, ASTRONAUT_BOX)
    masked, hole = put_face_mask(astronaut, face, np.random.default_rng(0), kind="surgical")
    result = unmask_array(masked, load_model("telea"), boxes=[ASTRONAUT_BOX], grabcut=False)
    f = result.faces[0]
    assert f.mask_found and 0.05 < f.mask_area < 0.4
    found = result.masks[0]
    assert (found & hole).sum() / (found | hole).sum() > 0.7  # the detected mask is the synthetic one
    assert (result.region & hole).sum() / hole.sum() > 0.97  # its fabric is replaced
    # nothing away from it changed: every changed pixel lies within the hole's dilation (DILATE of the
    # 128 px crop), two crop pixels of prediction error, and paste-back's own dilation + feathering
    px = 1 / np.sqrt(abs(np.linalg.det(align_face(masked, face, 128).matrix[:, :2])))  # photo px per crop px
    bound = (round(DILATE * 128) + 2) * px + np.ceil(px) + max(2, round(3 * px)) + 1  # ~15 px here
    dist = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    assert dist[result.region].max() <= bound
    assert result.region.sum() < 2 * hole.sum()
    # the default grows the prediction by colour: a superset, at most two crop pixels farther out here
    grown = unmask_array(masked, load_model("telea"), boxes=[ASTRONAUT_BOX])
    assert (grown.masks[0] >= found).all() and (grown.region & hole).sum() / hole.sum() > 0.97
    assert dist[grown.region].max() <= bound + 2 * px and grown.region.sum() < 2 * hole.sum()
    # the gradient-domain paste-back changes the same pixels, and meets the photo at the seam
    seamless = unmask_array(masked, load_model("telea"), boxes=[ASTRONAUT_BOX], seamless=True, grabcut=False)
    assert dist[seamless.region].max() <= bound and (seamless.region & hole).sum() / hole.sum() > 0.97
    heuristic = unmask_array(astronaut, load_model("telea"), boxes=[ASTRONAUT_BOX], region="landmarks")
    assert heuristic.faces[0].mask_found and heuristic.region.any()  # the fallback fills regardless


def test_cli_no_mask_note_debug_dir_and_folder(astronaut, tmp_path):
    from unmasked.conventions import save_image
    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask

    masked, _ = put_face_mask(astronaut, face_from_box(astronaut, ASTRONAUT_BOX), np.random.default_rng(1), kind="n95")
    save_image(tmp_path / "in" / "plain.png", astronaut)
    save_image(tmp_path / "in" / "masked.png", masked)
    box = ",".join(map(str, ASTRONAUT_BOX))
    r = CliRunner().invoke(main, ["unmask", str(tmp_path / "in" / "plain.png"), "-o", str(tmp_path / "o.png"),
                                  "--model", "telea", "--box", box, "--save-mask", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.output
    assert "no mask" in r.output and "left untouched" in r.output and "no worn mask found" in r.output
    assert not (load_image(tmp_path / "m.png").rgb > 127).any()  # an empty mask is still written
    r = CliRunner().invoke(main, ["unmask", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "telea",
                                  "--box", box, "--debug-dir", str(tmp_path / "dbg"), "--save-mask", str(tmp_path / "ms")])
    assert r.exit_code == 0, r.output
    assert "wrote 2 images" in r.output
    np.testing.assert_array_equal(load_image(tmp_path / "out" / "plain.png").rgb, astronaut)
    assert not np.array_equal(load_image(tmp_path / "out" / "masked.png").rgb, masked)
    assert (load_image(tmp_path / "ms" / "masked_mask.png").rgb > 127).mean() > 0.01
    stages = sorted(p.name for p in (tmp_path / "dbg" / "masked").iterdir())
    assert stages == ["face0_1_aligned.png", "face0_2_mask.png", "face0_2_probability.png", "face0_3_hole.png",
                      "face0_4_filled.png"]
    assert "face0_4_filled.png" not in {p.name for p in (tmp_path / "dbg" / "plain").iterdir()}


def test_unmask_with_a_reference_or_gallery_calls_the_model_with_the_aligned_reference(astronaut, tmp_path):
    import torch
    from click.testing import CliRunner

    from unmasked import create_model
    from unmasked.cli import main
    from unmasked.conventions import save_image
    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask

    face = face_from_box(astronaut, ASTRONAUT_BOX)
    masked, _ = put_face_mask(astronaut, face, np.random.default_rng(0), kind="surgical")
    torch.manual_seed(0)
    model = create_model("two_face", cnum=8, working_size=64).eval()
    seen = []
    forward = model.forward

    def recording_forward(image, mask, reference=None):
        seen.append(None if reference is None else tuple(reference.shape))
        return forward(image, mask, reference)

    model.forward = recording_forward
    result = unmask_array(masked, model, boxes=[ASTRONAUT_BOX], reference=astronaut)
    assert result.faces[0].mask_found and result.faces[0].reference == "given"
    assert seen == [None, (1, 3, 64, 64)]  # a plain fill, then the fill guided by the aligned reference
    save_image(tmp_path / "gallery" / "eileen" / "a.png", np.ascontiguousarray(astronaut[:, ::-1]))
    seen.clear()
    result = unmask_array(masked, model, boxes=[ASTRONAUT_BOX], gallery=tmp_path / "gallery")
    f = result.faces[0]
    assert f.reference is not None and f.reference.endswith("a.png") and f.reference_similarity > 0.91
    assert seen == [None, (1, 3, 64, 64)]
    with pytest.raises(ValueError, match="does not use a reference photo"):
        unmask_array(masked, load_model("telea"), boxes=[ASTRONAUT_BOX], reference=astronaut)
    save_image(tmp_path / "p.png", masked)
    r = CliRunner().invoke(main, ["unmask", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"),
                                  "--model", "deepfill_v2_faces128", "--reference", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and "does not use a reference photo; use a reference-guided model" in r.output
    # without --model, a reference picks the shipped Two-Face preset
    box = ",".join(map(str, ASTRONAUT_BOX))
    r = CliRunner().invoke(main, ["unmask", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--box", box,
                                  "--reference", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    assert "with the reference photo" in r.output
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == masked.shape and (out != masked).any()


def test_when_hog_misses_the_masked_face_the_cnn_detector_finds_it(astronaut):
    from unmasked.faces import detect_faces, face_from_box
    from unmasked.masks.face_mask import put_face_mask

    masked, hole = put_face_mask(astronaut, face_from_box(astronaut, ASTRONAUT_BOX), np.random.default_rng(0),
                                 kind="surgical")
    # HOG alone takes a badge on the suit for a face and misses the masked one
    assert all(f.box[1] > 200 for f in detect_faces(masked, detector="hog"))
    # "auto" stops at the badge, finds no mask on it and gives the CNN its turn
    result = unmask_array(masked, load_model("telea"), detector="auto")
    restored = [f for f in result.faces if f.mask_found]
    assert len(restored) == 1 and restored[0].detector == "cnn"
    assert (result.region & hole).sum() / hole.sum() > 0.97
    # "all" does not stop at the badge: HOG one upsample higher already sees the face
    result = unmask_array(masked, load_model("telea"), detector="all")
    restored = [f for f in result.faces if f.mask_found]
    assert len(restored) == 1 and (result.region & hole).sum() / hole.sum() > 0.97
    # the default (BlazeFace + FaceMesh) finds the masked face and nothing on the suit
    result = unmask_array(masked, load_model("telea"))
    assert [f.detector for f in result.faces] == ["blazeface"] and result.faces[0].mask_found
    assert (result.region & hole).sum() / hole.sum() > 0.97


def test_a_second_masked_person_that_hog_misses_is_restored_too(shared_data):
    """RMFD photo of two people in red cloth masks: HOG finds only the man (the woman's fringe
    covers her eyes). The default detector finds and restores both; dlib's "all" needs its CNN for
    her; "auto" stops at HOG's face."""
    from unmasked.conventions import load_image

    rgb = load_image(shared_data / "real_masked_photos" / "0001_0148.jpg").rgb
    model = load_model("telea")
    both = unmask_array(rgb, model)
    assert [f.mask_found for f in both.faces] == [True, True]
    assert {f.detector for f in both.faces} == {"blazeface"}
    dlib_all = unmask_array(rgb, model, detector="all")
    assert [f.mask_found for f in dlib_all.faces] == [True, True]
    assert {f.detector for f in dlib_all.faces} == {"hog", "cnn+1"}
    first_hit = unmask_array(rgb, model, detector="auto")
    assert [f.mask_found for f in first_hit.faces] == [True]
    # the woman's mask (right of the man's) changes only when her face is found
    x, y, w, h = next(f.box for f in dlib_all.faces if f.detector == "cnn+1")
    assert both.region[y : y + h, x : x + w].sum() > 0.1 * w * h
    assert first_hit.region[y + h // 2 : y + h, x + w // 2 : x + w].sum() == 0


def test_fill_with_a_reference_and_no_model_uses_the_two_face_preset(astronaut, tmp_path):
    hole = np.zeros(astronaut.shape[:2], bool)
    hole[130:160, 195:245] = True  # mouth and chin of the face
    save_image(tmp_path / "face.png", astronaut)
    save_image(tmp_path / "m.png", (hole * 255).astype(np.uint8))
    save_image(tmp_path / "ref.png", np.ascontiguousarray(astronaut[:, ::-1]))
    r = CliRunner().invoke(main, ["fill", str(tmp_path / "face.png"), "--mask", str(tmp_path / "m.png"),
                                  "-o", str(tmp_path / "out.png"), "--reference", str(tmp_path / "ref.png")])
    assert r.exit_code == 0, r.output
    assert "(model: two_face_faces128)" in r.output
    out = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(out[~hole], astronaut[~hole])
    assert (out[hole] != astronaut[hole]).any()


class _GreenSegmenter(SegmentModel):
    """A stand-in segmenter: the worn mask is every pure-green pixel."""

    working_size = 64

    def predict(self, image):
        import torch

        rgb = (image + 1) * 127.5
        green = (rgb[:, 1] > 200) & (rgb[:, 0] < 60) & (rgb[:, 2] < 60)
        return green[:, None].to(torch.float32)


def _photo_with_a_long_green_mask():
    """A 400 x 400 photo with the mean aligned face (landmarks only) whose green 'mask' runs from the
    nose to far below the FFHQ crop, as a mask does when dlib puts the jaw too high."""
    from unmasked.faces import Face
    from unmasked.faces.align import ffhq_quad
    from unmasked.masks.face_mask import FFHQ_MEAN_LANDMARKS

    lm = FFHQ_MEAN_LANDMARKS * 160 + [120, 60]
    rgb = np.zeros((400, 400, 3), np.uint8)
    rgb[..., 0] = np.linspace(80, 200, 400)[None, :]  # a smooth non-green background
    rgb[..., 2] = 120
    bottom = ffhq_quad(lm)[:, 1].max()
    y0 = int(lm[30, 1])
    rgb[y0 : int(bottom) + 15, int(lm[3, 0]) : int(lm[13, 0])] = (0, 255, 0)
    return rgb, Face((120, 100, 160, 160), lm)


def test_a_mask_running_off_the_crop_is_reframed(monkeypatch):
    import unmasked.pipelines.unmask
    from unmasked.pipelines.unmask import runs_off_bottom

    rgb, face = _photo_with_a_long_green_mask()
    monkeypatch.setattr(unmasked.pipelines.unmask, "detect_faces", lambda image, detector="all": [face])
    seg = _GreenSegmenter()
    green = np.all(rgb == (0, 255, 0), axis=2)
    plain = unmask_array(rgb, load_model("telea"), segmenter=seg, zooms=(), keep_stages=True)
    framed = unmask_array(rgb, load_model("telea"), segmenter=seg, keep_stages=True)
    assert runs_off_bottom(plain.stages[0].hole) and plain.faces[0].zoom == 1.0
    assert framed.faces[0].zoom > 1.0 and not runs_off_bottom(framed.stages[0].hole)
    left_plain = (green & ~plain.region).sum() / green.sum()
    left_framed = (green & ~framed.region).sum() / green.sum()
    assert left_plain > 0.1 and left_framed < 0.01, (left_plain, left_framed)  # the fabric below the crop is gone
    # the eyes stay where the FFHQ crop put them
    from unmasked.faces.align import transform_points

    eyes = (face.landmarks[36:42].mean(0) + face.landmarks[42:48].mean(0)) / 2
    from unmasked.faces import align_face

    with pytest.raises(ValueError, match="zoom must be > 0"):
        align_face(rgb, face, 128, zoom=0)
    for zoom in (1.15, 1.3):
        a, b = align_face(rgb, face, 128), align_face(rgb, face, 128, zoom=zoom)
        np.testing.assert_allclose(transform_points(a.matrix, eyes[None]), transform_points(b.matrix, eyes[None]), atol=1e-3)
        assert np.isclose(np.linalg.det(a.matrix[:, :2]) / np.linalg.det(b.matrix[:, :2]), zoom**2, rtol=1e-4)


def test_reframing_is_skipped_when_the_zoomed_prediction_disagrees(monkeypatch):
    import unmasked.pipelines.unmask

    rgb, face = _photo_with_a_long_green_mask()
    monkeypatch.setattr(unmasked.pipelines.unmask, "detect_faces", lambda image, detector="all": [face])

    class Shrinking(_GreenSegmenter):
        """Loses most of the mask on any crop but the first (a segmenter failing at a smaller scale)."""

        calls = 0

        def predict(self, image):
            prob = super().predict(image)
            Shrinking.calls += 1
            if Shrinking.calls > 1:
                prob[:, :, : int(prob.shape[2] * 0.75)] = 0
            return prob

    result = unmask_array(rgb, load_model("telea"), segmenter=Shrinking())
    assert Shrinking.calls == 3 and result.faces[0].zoom == 1.0  # both zooms tried, neither trusted


def _green_up_to_the_eyes():
    """The long-green-mask photo with its green from the brows to the chin and dark eyes on it:
    (photo, face, uint8 map of the eyes' landmark outlines)."""
    import cv2

    rgb, face = _photo_with_a_long_green_mask()
    lm = face.landmarks
    rgb[:] = (90, 60, 120)
    rgb[int(lm[19, 1]) : int(lm[8, 1]), int(lm[0, 0]) : int(lm[16, 0])] = (0, 255, 0)  # brows to chin
    outline = np.zeros(rgb.shape[:2], np.uint8)
    for part in (lm[36:42], lm[42:48]):
        cv2.fillPoly(outline, [np.round(part).astype(np.int32)], 1)
    rgb[outline > 0] = (20, 10, 10)  # dark eyes on the green
    return rgb, face, outline


def test_the_eyes_are_never_part_of_the_hole(monkeypatch):
    """A hole that runs up over the eyes (the segmenter's region dilated; on real photos GrabCut on
    a skin-coloured mask too): the hole spares both eyes, so the photo's eyes come back untouched;
    without the guard they are repainted."""
    import cv2

    import unmasked.pipelines.unmask as unmask
    from unmasked.faces import align_face

    rgb, face, outline = _green_up_to_the_eyes()
    eyes = cv2.erode(outline, np.ones((3, 3), np.uint8)).astype(bool)  # the eyes' inner pixels
    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [face])
    kwargs = dict(segmenter=_GreenSegmenter(), zooms=(), dilate=0.06)  # a dilation that reaches in

    guarded = unmask_array(rgb, load_model("telea"), keep_stages=True, **kwargs)
    crop_eyes = unmask.eye_guard(align_face(rgb, face, 128).landmarks, 128, grow=0)
    assert crop_eyes.sum() > 40 and not (guarded.stages[0].hole & crop_eyes).any()
    assert guarded.faces[0].mask_found

    def change(result):  # per eye pixel, the largest channel change
        return np.abs(result.image.astype(int) - rgb.astype(int)).max(axis=2)[eyes]

    assert change(guarded).max() <= 2  # the seam's feather, rounded
    monkeypatch.setattr(unmask, "eye_guard", lambda landmarks, size, grow=0, **kw: np.zeros((size, size), bool))
    unguarded = unmask_array(rgb, load_model("telea"), **kwargs)
    assert change(unguarded).mean() > 40  # the eyes were painted over with the green around them


def test_fabric_on_an_eye_the_segmenter_marks_is_repainted_and_the_rest_of_the_eye_kept(monkeypatch):
    """An "eye" whose landmark outline the segmenter marks as worn mask (a misplaced landmark, or a
    mask's edge over the lower lid): the fabric it marked there is repainted, inside the eye's guard
    too, and the eye's unmarked pixels stay the photo's; with ``eye_check=False`` the guard keeps it all."""
    import cv2
    import torch

    import unmasked.pipelines.unmask as unmask
    from unmasked.faces import align_face
    from unmasked.pipelines.unmask import EYE_ON_FABRIC, eyes_off_fabric

    # known values: the mean probability inside each eye's outline against EYE_ON_FABRIC
    rgb, face, outline = _green_up_to_the_eyes()
    lm = align_face(rgb, face, 128).landmarks
    prob = np.zeros((128, 128), np.float32)
    assert eyes_off_fabric(lm, prob) == (True, True) and eyes_off_fabric(lm, None) == (True, True)
    left = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(left, [np.round(lm[36:42]).astype(np.int32)], 1)
    prob[left > 0] = EYE_ON_FABRIC  # at the threshold: off the fabric
    assert eyes_off_fabric(lm, prob) == (True, True)
    prob[left > 0] = 2 * EYE_ON_FABRIC
    assert eyes_off_fabric(lm, prob) == (False, True)
    assert not (unmask.eye_guard(lm, 128, eyes=(False, True)) & (left > 0)).any()

    # the photo: the segmenter marks the green and each eye's outer part (a mask's edge over it)
    eyes = cv2.erode(outline, np.ones((3, 3), np.uint8)).astype(bool)
    cols = np.arange(rgb.shape[1])[None, :].repeat(rgb.shape[0], 0)
    centre = np.where(cols < face.landmarks[27, 0], face.landmarks[36:42, 0].mean(), face.landmarks[42:48, 0].mean())
    outer = np.where(cols < face.landmarks[27, 0], cols < centre - 3, cols > centre + 3)
    inner = np.where(cols < face.landmarks[27, 0], cols > centre + 1, cols < centre - 1)
    marked, kept = (outline > 0) & outer, eyes & inner
    assert marked.sum() > 20 and kept.sum() > 5

    aligned = align_face(rgb, face, 128)
    marked_crop = cv2.warpAffine(marked.astype(np.float32), aligned.matrix, (128, 128)) > 0.5

    class OverTheLids(_GreenSegmenter):  # green, or the eyes' outer parts
        def predict(self, image):
            prob = super().predict(image)
            return torch.maximum(prob, torch.from_numpy(marked_crop.astype(np.float32))[None, None])

    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [face])
    kwargs = dict(segmenter=OverTheLids(), zooms=(), mean_face=False)  # the repainted pixels: Telea's green
    checked = unmask_array(rgb, load_model("telea"), **kwargs)
    trusted = unmask_array(rgb, load_model("telea"), eye_check=False, **kwargs)

    def change(result, where):
        return np.abs(result.image.astype(int) - rgb.astype(int)).max(axis=2)[where]

    assert change(trusted, eyes).max() <= 2  # guarded: the marked parts stay
    assert change(checked, marked).mean() > 40  # checked: repainted with the green around them
    assert change(checked, kept).max() <= 2  # and the eyes' inner parts are still the photo's


def test_fabric_beside_the_eyes_is_hidden_from_the_model_and_repainted_but_the_eyes_are_not(monkeypatch):
    """A worn mask reaching up to the eyes: the eye guard keeps the eyes out of the hole, but the
    fabric in the guard's ring is neither shown to the model (it would carry its colour into the
    fill) nor left in the photo: only the eyes themselves are kept."""
    import cv2
    import torch

    import unmasked.pipelines.unmask as unmask
    from unmasked.faces import align_face
    from unmasked.models.base import InpaintModel, InpaintOutput

    rgb, face, eyes = _green_up_to_the_eyes()
    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [face])

    class Spy(InpaintModel):  # paints mid-grey and keeps the hole it was given
        multiple, working_size = 8, 128
        holes = []

        def forward(self, image, mask, reference=None):
            self.holes.append(mask[0, 0].numpy() > 0.5)
            return InpaintOutput(torch.zeros_like(image))

    spy = Spy()
    result = unmask_array(rgb, spy, segmenter=_GreenSegmenter(), zooms=(), mean_face=False, grain=False,
                          keep_stages=True)
    aligned = align_face(rgb, face, 128)
    crop_eyes = unmask.eye_guard(aligned.landmarks, 128, grow=0)
    ring = unmask.eye_guard(aligned.landmarks, 128) & ~unmask.eye_guard(aligned.landmarks, 128, grow=0.016)
    green = (aligned.image[..., 1] > 200) & (aligned.image[..., 0] < 60)
    assert (ring & green).sum() > 20
    seen = cv2.resize(spy.holes[0].astype(np.uint8), (128, 128), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert seen[ring & green].mean() > 0.95  # the fabric by the eyes is hidden from the model ...
    assert not seen[cv2.erode(crop_eyes.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)].any()  # ... the eyes are not
    hole = result.stages[0].hole
    assert hole[ring & green].all() and not (hole & crop_eyes).any()  # repainted, down to the eyes' own outline
    inner = cv2.erode(eyes, np.ones((3, 3), np.uint8)).astype(bool)
    assert np.abs(result.image.astype(int) - rgb.astype(int)).max(axis=2)[inner].max() <= 2  # the eyes untouched


def test_the_dotted_jaw_stroke_is_smoothed_and_the_jaws_edge_kept():
    import cv2

    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS
    from unmasked.pipelines.unmask import smooth_jaw_line

    pts = np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * 127
    jaw = np.zeros((128, 128), np.uint8)
    cv2.fillPoly(jaw, [np.round(np.r_[pts[0:17], [[127, 127], [0, 127]]]).astype(np.int32)], 1)
    fill = np.where(jaw[..., None] > 0, 120, 200).astype(np.uint8).repeat(3, axis=2)  # the face lighter than the neck
    fill = np.ascontiguousarray(fill[..., 0:3])
    for x, y in np.round(pts[4:13]).astype(int):  # dots on the jaw line, as the model paints them
        cv2.circle(fill, (int(x), int(y)), 1, (60, 40, 40), -1)
    hole = np.zeros((128, 128), bool)
    hole[int(pts[29, 1]):, 20:108] = True
    out = smooth_jaw_line(fill, hole, pts)
    dots = np.zeros((128, 128), bool)
    for x, y in np.round(pts[4:13]).astype(int):
        dots[y, x] = True
    assert (out[dots & hole] >= 110).all()  # the dots took their surroundings' values
    np.testing.assert_array_equal(out[~hole], fill[~hole])  # nothing outside the hole
    near = cv2.dilate(cv2.polylines(np.zeros((128, 128), np.uint8), [np.round(pts[0:17]).astype(np.int32)], False, 1),
                      np.ones((9, 9), np.uint8)).astype(bool)
    np.testing.assert_array_equal(out[~near], fill[~near])  # nor away from the jaw line
    # the jaw's edge stays an edge: inside the band, face and neck keep their levels
    inside, below = out[hole & near & (jaw == 0)], out[hole & near & (jaw > 0)]
    assert np.median(inside) >= 190 and np.median(below) <= 130


@pytest.mark.data
def test_a_real_dark_mask_below_the_crop_is_removed(shared_data):
    from unmasked.pipelines.unmask import runs_off_bottom

    rgb = load_image(shared_data / "real_masked_photos" / "0001_0181.jpg").rgb
    model = load_model("pconv_unet_faces128")
    plain = unmask_array(rgb, model, zooms=(), keep_stages=True)
    framed = unmask_array(rgb, model, keep_stages=True)
    assert runs_off_bottom(plain.stages[0].hole)  # the black mask continues below the FFHQ crop
    assert framed.faces[0].zoom > 1.0 and not runs_off_bottom(framed.stages[0].hole)
    # dark fabric (the mask is near-black) left in the photo's lower face: far less after reframing
    x, y, w, h = framed.faces[0].box
    lower = np.zeros(rgb.shape[:2], bool)
    lower[y + h // 2 : min(rgb.shape[0], y + h + h // 3), x : x + w] = True
    dark = lambda img: ((img.max(axis=2) < 60) & lower).sum()  # noqa: E731
    assert dark(framed.image) < 0.5 * dark(plain.image), (dark(rgb), dark(plain.image), dark(framed.image))


def test_grabcut_grows_the_worn_mask_over_the_fabric_the_segmenter_missed(astronaut):
    """A turned face's far cheek or a logo: the segmenter stops short; growth by colour takes the
    rest of the fabric, inside the landmark zone, and never less than the prediction."""
    from unmasked.faces import align_face, detect_faces
    from unmasked.pipelines.unmask import GROW_ZONE, grow_by_colour

    aligned = align_face(astronaut, detect_faces(astronaut)[0], 128)
    image, landmarks = aligned.image.copy(), aligned.landmarks
    fabric = worn_mask_region(landmarks, 128, 0.0)
    rng = np.random.default_rng(0)
    image[fabric] = (25 + rng.normal(0, 4, (fabric.sum(), 3))).clip(0, 255).astype(np.uint8)  # a black mask
    logo = fabric & (np.arange(128)[None, :] > 80) & (np.arange(128)[:, None] > 95)
    image[logo & (np.arange(128)[:, None] < 100)] = (200, 30, 30)  # a red print on it
    prob = np.where(fabric & (np.arange(128)[None, :] < 64), 0.95, 0.02).astype(np.float32)  # left half found
    grown = grow_by_colour(image, prob, landmarks)
    assert (grown >= (prob > 0.5)).all()  # never shrinks the prediction
    assert (grown & fabric).sum() / fabric.sum() > 0.95 > (prob > 0.5).sum() / fabric.sum() + 0.4
    assert not (grown & ~worn_mask_region(landmarks, 128, GROW_ZONE)).any()  # only inside the zone
    assert (grown & ~fabric).sum() < 0.1 * fabric.sum()  # and not over the skin around it
    # a growth to more than GROW_MAX x the prediction is taken for a run-away: the prediction stands
    ys, xs = np.nonzero(fabric)
    patch = np.zeros_like(prob)
    patch[ys.mean().astype(int) - 10:ys.mean().astype(int) + 10, xs.mean().astype(int) - 10:xs.mean().astype(int) + 10] = 0.95
    assert fabric.sum() > 3 * (patch > 0.5).sum()
    np.testing.assert_array_equal(grow_by_colour(image, patch, landmarks), patch > 0.5)
    np.testing.assert_array_equal(grow_by_colour(image, np.zeros_like(prob), landmarks), np.zeros((128, 128), bool))


def test_unmask_takes_a_face_square_on_the_reference(astronaut, tmp_path):
    """``reference_box`` (API) / ``--reference-box`` (CLI): the face in that square of the reference
    photo is the reference, not its largest face; without a reference it is a one-line error."""
    import torch

    from unmasked import create_model
    from unmasked.conventions import image_to_tensor
    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask
    from unmasked.pipelines.reference import aligned_reference

    face = face_from_box(astronaut, ASTRONAUT_BOX)
    masked, _ = put_face_mask(astronaut, face, np.random.default_rng(0), kind="surgical")
    group = np.full((256, 416, 3), 90, np.uint8)  # the person small on the left, a larger other face right
    crop = np.ascontiguousarray(astronaut[:256, 96:352])
    group[48:208, :160] = np.asarray(Image.fromarray(crop).resize((160, 160), Image.BILINEAR))
    group[:, 160:] = crop[:, ::-1]
    box = (0, 48, 160, 160)
    torch.manual_seed(0)
    model = create_model("two_face", cnum=8, working_size=64).eval()
    seen = []
    forward = model.forward
    model.forward = lambda image, mask, reference=None: (seen.append(reference), forward(image, mask, reference))[1]
    result = unmask_array(masked, model, boxes=[ASTRONAUT_BOX], reference=group, reference_box=box)
    assert result.faces[0].reference == "given"
    torch.testing.assert_close(seen[-1], image_to_tensor(aligned_reference(group, 64, box=box)))
    with pytest.raises(ValueError, match="a reference face square needs a reference photo"):
        unmask_array(masked, model, boxes=[ASTRONAUT_BOX], reference_box=box)

    save_image(tmp_path / "p.png", masked)
    save_image(tmp_path / "group.png", group)
    base = ["unmask", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png"), "--box", ",".join(map(str, ASTRONAUT_BOX))]
    r = CliRunner().invoke(main, base + ["--reference", str(tmp_path / "group.png"), "--reference-box", "300,0,200,200"])
    assert r.exit_code == 1 and "lies outside the 416x256 reference photo" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o.png").exists()
    r = CliRunner().invoke(main, base + ["--reference-box", "0,48,160,160"])
    assert r.exit_code == 1 and "a reference face square needs a reference photo" in r.output
    r = CliRunner().invoke(main, ["fill", str(tmp_path / "p.png"), "--mask", str(tmp_path / "p.png"), "-o",
                                  str(tmp_path / "f.png"), "--reference-box", "0,48,160,160"])
    assert r.exit_code == 1 and "--reference-box needs --reference" in r.output
    r = CliRunner().invoke(main, base + ["--reference", str(tmp_path / "group.png"), "--reference-box", "0,48,160,160"])
    assert r.exit_code == 0, r.output
    assert "with the reference photo" in r.output and (tmp_path / "o.png").exists()


def _masked_astronaut(astronaut, scale: float):
    """The astronaut scaled by ``scale`` wearing a synthetic surgical mask: (photo, hole, face box)."""
    import cv2

    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask

    rgb = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    box = tuple(round(scale * v) for v in ASTRONAUT_BOX)
    masked, hole = put_face_mask(rgb, face_from_box(rgb, box), np.random.default_rng(0), kind="surgical")
    return masked, hole, box


def test_unmask_is_deterministic_with_the_colour_growth(astronaut):
    """GrabCut seeds its colour models from OpenCV's global RNG: without a fixed seed two runs on
    the same photo differed in ~2,000 pixel values."""
    masked, _, box = _masked_astronaut(astronaut, 0.7)  # a size where it showed
    first, *others = [unmask_array(masked, load_model("telea"), boxes=[box]).image for _ in range(3)]
    for other in others:
        np.testing.assert_array_equal(first, other)


def test_a_large_face_is_pasted_back_at_its_own_resolution(astronaut):
    """A face 2.7x the crop: the fill is pasted from a crop at 3x, so the feather ring outside the
    hole blends the fill with the photo itself, not with a copy shrunk to 128² and scaled up."""
    import cv2

    from unmasked.faces import align_face, face_from_box
    from unmasked.faces.align import scale_of

    masked, hole, box = _masked_astronaut(astronaut, 2)
    assert round(1 / scale_of(align_face(masked, face_from_box(masked, box), 128).matrix)) == 3
    native = unmask_array(masked, load_model("telea"), boxes=[box], grabcut=False)
    cropres = unmask_array(masked, load_model("telea"), boxes=[box], grabcut=False, native=False)
    for r in (native, cropres):
        assert (r.region & hole).sum() / hole.sum() > 0.97
    near = cv2.dilate(cropres.region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (native.region & ~near).any()  # no farther out than before
    # the ring the seam's feather covers outside the hole (16-28 px out; the hole is dilated by ~11
    # px): closer to the photo now, since the fill is blended with the photo, not a blurred copy
    dist = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    ring = (dist > 16) & (dist <= 28)

    def err(r):
        return np.abs(r.image.astype(float) - masked.astype(float))[ring].mean()

    assert err(native) < 0.4 * err(cropres), (err(native), err(cropres))  # measured 0.12 against 0.76
    # the gradient-domain paste-back works on the larger crop too
    seamless = unmask_array(masked, load_model("telea"), boxes=[box], grabcut=False, seamless=True)
    assert (seamless.region & hole).sum() / hole.sum() > 0.97 and not (seamless.region & ~near).any()


def test_a_face_at_the_crop_size_is_pasted_from_the_crop(astronaut):
    masked, _, box = _masked_astronaut(astronaut, 0.8)  # ~1.1 photo px a crop px
    native = unmask_array(masked, load_model("telea"), boxes=[box])
    cropres = unmask_array(masked, load_model("telea"), boxes=[box], native=False)
    assert native.faces[0].mask_found
    np.testing.assert_array_equal(native.image, cropres.image)


def _guide_spy(kind: str):
    """A landmark-guided face model of guide ``kind`` that records each guide it is given and paints black."""
    from unmasked.models.base import InpaintModel, InpaintOutput

    class GuideSpy(InpaintModel):
        multiple, working_size, uses_landmarks, guide_kind = 8, 128, True, kind

        def __init__(self):
            super().__init__()
            self.guides = []

        def forward(self, image, mask, reference=None, guide=None):
            self.guides.append(guide[0, 0].numpy().copy())
            return InpaintOutput(image * 0)

    return GuideSpy()


def test_a_landmark_guided_model_is_given_the_face_s_landmarks_in_the_crop(astronaut):
    """unmask draws FaceMesh's 68 points, moved into the aligned crop, as the guide: its eye and
    brow lines lie where FFHQ alignment puts the eyes and brows."""
    import cv2

    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

    masked, _, box = _masked_astronaut(astronaut, 1.0)
    spy = _guide_spy("lines")
    result = unmask_array(masked, spy, boxes=[box])
    assert result.faces[0].mask_found and len(spy.guides) == 1
    drawn = spy.guides[0]
    assert drawn.shape == (128, 128)
    off_line = cv2.distanceTransform((drawn < 0.3).astype(np.uint8), cv2.DIST_L2, 3)
    expected = np.asarray(FFHQ_MEAN_LANDMARKS) * 128
    upper = expected[17:48]  # brows, nose, eyes: not hidden by the mask
    assert np.mean([off_line[int(round(y)), int(round(x))] for x, y in upper]) < 3.0
    assert (drawn > 0.3).mean() < 0.1


def _face_on_blue(size: int = 128):
    """A crop: blue background, a red face within the FFHQ mean landmarks' hull, and those points."""
    import cv2

    from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS

    mean = np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * size
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = (0, 0, 255)
    face = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(mean).astype(np.int32)), 1)
    image[face > 0] = (255, 0, 0)
    return image, face.astype(bool), mean


def test_the_hole_beside_the_face_is_filled_from_the_background_only():
    from unmasked.pipelines.unmask import face_outline, split_at_outline

    image, face, points = _face_on_blue()
    hole = np.zeros(face.shape, bool)
    hole[70:100, :] = True  # a band across the lower face, out to both edges of the crop
    image[hole] = (255, 255, 255)  # the mask's fabric
    source, inner = split_at_outline(image, hole, points)
    beside = hole & ~inner
    np.testing.assert_array_equal(inner, hole & face_outline(points, 128))  # the face's outline splits the hole
    assert beside.sum() > 0.3 * hole.sum() and inner.sum() > 0.3 * hole.sum()
    # no skin (red) and no fabric (white) beside the face: only the blue around it
    assert source[beside][:, 0].max() < 40 and source[beside][:, 1].max() < 40 and source[beside][:, 2].min() > 200
    # outside the hole and in the face's part of it nothing changed (the face model fills that)
    np.testing.assert_array_equal(source[~beside], image[~beside])
    # a hole within the outline is the face model's alone
    small = np.zeros_like(hole)
    small[75:85, 55:70] = True
    same_image, same_hole = split_at_outline(image, small, points)
    assert same_image is image and same_hole is small


def test_with_outline_the_face_model_fills_only_the_face_within_its_outline(astronaut):
    import torch

    from unmasked.data.landmark_guide import unmasked_guess
    from unmasked.faces import align_face, face_from_box
    from unmasked.models.base import InpaintModel, InpaintOutput
    from unmasked.pipelines.unmask import eye_guard, face_outline

    class HoleSpy(InpaintModel):
        multiple, working_size = 8, 128

        def __init__(self):
            super().__init__()
            self.holes = []

        def forward(self, image, mask, reference=None):
            self.holes.append(mask[0, 0].numpy().astype(bool))
            green = torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1)
            return InpaintOutput(green.expand_as(image).clone())  # paints pure green

    masked, _, box = _masked_astronaut(astronaut, 1.0)
    plain, split = HoleSpy(), HoleSpy()
    before = unmask_array(masked, plain, boxes=[box], keep_stages=True)
    after = unmask_array(masked, split, boxes=[box], keep_stages=True, outline=True)
    hole = after.stages[0].hole
    np.testing.assert_array_equal(before.stages[0].hole, hole)  # the same hole is restored ...
    aligned = align_face(masked, face_from_box(masked, box), 128)
    inside = face_outline(unmasked_guess(aligned.landmarks, 128), 128)
    # the model is given the hole and, hidden, the part of the mask that the eye guard keeps
    assert plain.holes[0][hole].all() and not (plain.holes[0] & ~hole & ~eye_guard(aligned.landmarks, 128)).any()
    np.testing.assert_array_equal(split.holes[0], plain.holes[0] & inside)  # ... but the model paints only the face
    assert (hole & ~inside).sum() > 15  # the surgical mask reaches a little past the astronaut's cheeks
    beside = hole & ~inside
    # there the model's green is gone: the colours around the face came in instead
    assert (before.stages[0].filled[beside] == (0, 255, 0)).all()
    got = after.stages[0].filled[beside].astype(int)
    assert not ((got[:, 1] > 150) & (got[:, 1] - got[:, [0, 2]].max(axis=1) > 100)).any()
    assert (after.stages[0].filled[inside & hole] == (0, 255, 0)).all()


def _grey_model(lines: str | None = None):
    """A face model that paints flat mid-grey (0 in [-1, 1]), or grey with dark lines 6 px apart:
    ``lines`` "bands" (horizontal: the stacked half-mouths of a banded fill) or "upright"."""
    import torch

    from unmasked.models.base import InpaintModel, InpaintOutput

    class Grey(InpaintModel):
        multiple, working_size = 8, 128

        def forward(self, image, mask, reference=None):
            out = torch.zeros_like(image)
            if lines == "bands":
                out[..., ::6, :] = -0.6
            elif lines == "upright":
                out[..., ::6] = -0.6
            return InpaintOutput(out)

    return Grey()


@pytest.mark.parametrize("scale", [1.0, 2.5])  # pasted from the crop (a small face) and at 3x the crop
def test_the_mean_face_gives_the_restored_face_structure_and_no_colour(astronaut, scale):
    import cv2

    masked, _, box = _masked_astronaut(astronaut, scale)
    masked = np.repeat(cv2.cvtColor(masked, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)  # a black-and-white photo
    model = _grey_model()
    plain = unmask_array(masked, model, boxes=[box], mean_face=False, grain=False)
    mean = unmask_array(masked, model, boxes=[box], mean_face=True, grain=False)
    assert plain.faces[0].mask_found and mean.faces[0].mask_found
    # the mean face changes what is pasted, not where (up to 2 px of the paste's resampling)
    near = cv2.dilate(plain.region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (mean.image != plain.image).any(axis=2)[~near].any()
    # where the spy's flat grey was pasted back whole (the hole, away from its blended edge) ...
    core = cv2.erode((plain.image == 128).all(axis=2).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert core.sum() > 0.4 * plain.region.sum()
    grey = mean.image[core].astype(np.int16).mean(axis=1)
    assert grey.std() > 6 and grey.max() - grey.min() > 40  # ... nose, mouth and chin came in
    # and the black-and-white photo stayed black and white: the mean face's detail is luminance only
    out = mean.image.astype(np.int16)
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 1] - out[..., 2]).max() <= 1


def test_the_mean_face_fades_in_from_the_holes_edge(astronaut, monkeypatch):
    """The mean face's detail starts at zero at the hole's edge (STRUCTURE_EDGE), where the fill
    carries the photo's shading on; at full weight there it drew a step along the hole's edge."""
    import cv2

    import unmasked.pipelines.unmask as unmask

    masked, _, box = _masked_astronaut(astronaut, 2.5)  # pasted at 3x the crop
    model = _grey_model()
    plain = unmask_array(masked, model, boxes=[box], mean_face=False, grain=False)
    soft = unmask_array(masked, model, boxes=[box], mean_face=True, grain=False)
    monkeypatch.setattr(unmask, "STRUCTURE_EDGE", 0.0)
    hard = unmask_array(masked, model, boxes=[box], mean_face=True, grain=False)
    region = plain.region.astype(np.uint8)

    def inside(px):
        return cv2.erode(region, np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)

    def change(result, where):  # the mean face's mean change there, grey levels
        return np.abs(result.image.astype(int) - plain.image.astype(int)).max(axis=2)[where].mean()

    edge, deep = inside(3) & ~inside(6), inside(24)  # one crop pixel inside the edge; the hole's middle
    assert edge.sum() > 1000 and deep.sum() > 5000
    assert change(soft, edge) < 0.25 * change(hard, edge)  # measured: 1.3 against 16.3
    assert change(hard, edge) > 8
    assert abs(change(soft, deep) - change(hard, deep)) < 0.1 * change(hard, deep)  # measured: 8.5 both


def test_the_textured_mean_face_gives_the_restored_face_finer_structure_in_the_same_place(astronaut):
    """``mean_texture``: the texture-enhanced mean face (Tiddeman et al.'s prototype) is warped in
    instead of the plain one: the same region, the same low band, more fine contrast, no colour."""
    import cv2

    masked, _, box = _masked_astronaut(astronaut, 2.5)
    model = _grey_model()
    plain = unmask_array(masked, model, boxes=[box], mean_face=True, mean_texture=False, grain=False)
    textured = unmask_array(masked, model, boxes=[box], mean_face=True, mean_texture=True, grain=False)
    np.testing.assert_array_equal(plain.region, textured.region)
    core = cv2.erode(plain.region.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert core.sum() > 5000

    def fine(result):  # the luminance's finest detail (above a Gaussian of 2 px) in the hole's middle
        grey = result.image.astype(np.float32).mean(axis=2)
        return np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 2.0))[core].mean()

    assert fine(textured) > 1.3 * fine(plain)  # measured: 0.92 against 0.58 grey levels
    low = [cv2.GaussianBlur(r.image.astype(np.float32), (0, 0), 12.0)[core] for r in (plain, textured)]
    assert np.abs(low[0] - low[1]).mean() < 2.0  # the fill's colour and shading are kept
    changed = (textured.image != plain.image).any(axis=2)
    assert not changed[~cv2.dilate(plain.region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)].any()


def test_grain_adds_the_photos_skin_texture_inside_a_large_restored_face_only(astronaut):
    import cv2

    masked, _, box = _masked_astronaut(astronaut, 2.5)  # pasted at 3x the crop
    model = _grey_model()
    plain = unmask_array(masked, model, boxes=[box], mean_face=False, grain=False)
    grained = unmask_array(masked, model, boxes=[box], mean_face=False)  # grain is the default
    near = cv2.dilate(plain.region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (grained.image != plain.image).any(axis=2)[~near].any()  # nothing beyond the paste region
    core = cv2.erode((plain.image == 128).all(axis=2).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert core.sum() > 200
    lum = cv2.cvtColor(grained.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    high = np.abs(lum - cv2.GaussianBlur(lum, (0, 0), 1.5))
    assert high[core].mean() > 0.5  # the flat grey got grain
    # a face smaller than twice the crop has no grain finer than the fill's: none is added
    masked, _, box = _masked_astronaut(astronaut, 1.0)
    np.testing.assert_array_equal(unmask_array(masked, model, boxes=[box], mean_face=False).image,
                                  unmask_array(masked, model, boxes=[box], mean_face=False, grain=False).image)


def test_auto_takes_the_mean_face_only_for_a_banded_fill(astronaut):
    masked, _, box = _masked_astronaut(astronaut, 1.0)
    for lines in ("upright", "bands"):
        bands = lines == "bands"
        model = _grey_model(lines)
        auto = unmask_array(masked, model, boxes=[box], mean_face="auto")
        face = auto.faces[0]
        assert face.mask_found and face.mean_face == bands
        assert (face.band_ratio > BAND_THRESHOLD) == bands  # upright lines: far below; bands: far above
        same = unmask_array(masked, model, boxes=[box], mean_face=bands)
        np.testing.assert_array_equal(auto.image, same.image)
        assert same.faces[0].mean_face == bands
        assert (same.faces[0].band_ratio is None) == (not bands)  # measured only when the mean face may be used
    with pytest.raises(ValueError, match="mean_face must be one of"):
        unmask_array(masked, model, boxes=[box], mean_face="sometimes")


def test_the_cli_takes_the_mean_face(astronaut, tmp_path):
    masked, _, box = _masked_astronaut(astronaut, 1.0)
    save_image(tmp_path / "p.png", masked)
    outs = {}
    for choice in ("off", "on"):
        out = tmp_path / f"o{choice}.png"
        r = CliRunner().invoke(main, ["unmask", str(tmp_path / "p.png"), "-o", str(out), "--box", ",".join(map(str, box)),
                                      "--mean-face", choice])
        assert r.exit_code == 0, r.output
        assert ("mean face's structure" in r.output) == (choice == "on")
        outs[choice] = load_image(out).rgb.astype(np.int16)
    changed = np.abs(outs["on"] - outs["off"]).max(axis=2)
    assert (changed > 10).sum() > 500  # the restored face differs ...
    assert not changed[:, : box[0] - 20].any()  # ... and nothing left of it


def test_a_model_guided_by_the_mean_face_is_given_it(astronaut):
    from unmasked.data.landmark_guide import draw_guide, unmasked_guess
    from unmasked.faces import align_face, face_from_box
    from unmasked.models.pconv_unet import PConvUNet

    masked, _, box = _masked_astronaut(astronaut, 1.0)
    spy = _guide_spy("mean_face")
    assert unmask_array(masked, spy, boxes=[box]).faces[0].mask_found
    aligned = align_face(masked, face_from_box(masked, box), 128)
    expected = draw_guide(unmasked_guess(aligned.landmarks, 128), 128, "mean_face")
    np.testing.assert_allclose(spy.guides[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="guide_kind"):
        PConvUNet(depth=3, working_size=64, landmark_guide=True, guide_kind="photo")


def test_second_look_faces_are_restored_only_where_the_segmenter_finds_a_mask(monkeypatch):
    """No face from the detector: the second look's faces are tried, a face without a worn mask on it
    is not even reported, and ``second_look=False`` (or given boxes) skips it."""
    import unmasked.pipelines.unmask as unmask
    from unmasked.faces import Face

    rgb, masked = _photo_with_a_long_green_mask()
    plain = Face((10, 10, 60, 60), masked.landmarks * 0.375 + 5)  # a small face-shaped spot, no green on it
    calls = []

    def second_look(image, exclude=()):
        calls.append(list(exclude))
        return [Face(plain.box, plain.landmarks, 0.3, "blazeface-second-look"),
                Face(masked.box, masked.landmarks, 0.3, "blazeface-second-look")]

    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [])
    monkeypatch.setattr(unmask, "second_look_faces", second_look)
    telea, seg = load_model("telea"), _GreenSegmenter()
    result = unmask_array(rgb, telea, segmenter=seg, zooms=(), mean_face=False, grain=False)
    assert calls == [[]]
    assert [f.detector for f in result.faces] == ["blazeface-second-look"] and result.faces[0].box == masked.box
    assert result.faces[0].mask_found and len(result.masks) == 1 and result.note is None
    green = np.all(rgb == (0, 255, 0), axis=2)
    assert (green & result.region).sum() > 0.5 * green.sum()  # restored
    for kwargs in ({"second_look": False}, {"detector": "hog"}, {"region": "landmarks"}):
        off = unmask_array(rgb, telea, segmenter=seg, zooms=(), **kwargs)
        assert not off.faces and "no face found" in off.note
        np.testing.assert_array_equal(off.image, rgb)
    assert len(calls) == 1
    # a detected face that wears no mask does not stop the second look; one that does, does
    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [plain])
    result = unmask_array(rgb, telea, segmenter=seg, zooms=(), mean_face=False, grain=False)
    assert calls[-1] == [plain.box] and [f.mask_found for f in result.faces] == [False, True]
    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [masked])
    unmask_array(rgb, telea, segmenter=seg, zooms=(), mean_face=False, grain=False)
    assert len(calls) == 2


@pytest.mark.data
def test_second_look_finds_a_masked_face_the_detector_passes_over(shared_data):
    """Real photos: a woman in a teal mask that neither BlazeFace model finds with the usual checks,
    found on a second look and restored by ``unmask``; a scene whose tile box the short-range
    model scores 0.79 (and 0.64 on the second look) that the full-range model rejects."""
    from unmasked.faces import detect_faces
    from unmasked.faces.second_look import second_look_faces

    rgb = load_image(shared_data / "real_masked_photos" / "0008_0146.jpg").rgb
    assert detect_faces(rgb) == []
    found = second_look_faces(rgb)
    assert len(found) == 1 and found[0].detector == "blazeface-second-look"
    result = unmask_array(rgb, load_model("telea"), grain=False)
    assert [f.detector for f in result.faces] == ["blazeface-second-look"] and result.faces[0].mask_found
    x, y, w, h = found[0].box
    mouth = found[0].mouth_centre.round().astype(int)
    assert x <= mouth[0] <= x + w and y <= mouth[1] <= y + h and result.region[mouth[1], mouth[0]]
    assert second_look_faces(rgb, exclude=[found[0].box]) == []
    scene = load_image(shared_data / "scenes" / "CBSD68" / "33039.jpg").rgb
    assert detect_faces(scene) == [] and second_look_faces(scene) == []


def test_a_fill_in_a_monochrome_photo_takes_the_photos_tone():
    """Grey or toned photos get a fill of their own tone (its lightness kept); colour photos keep the fill's colour."""
    import cv2

    from unmasked.pipelines.unmask import match_monochrome

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(30, 220, (128, 128, 1), dtype=np.uint8), 3, axis=2)
    hole = np.zeros((128, 128), bool)
    hole[60:110, 30:100] = True
    pink = np.where(hole[..., None], np.uint8([200, 120, 150]), grey).astype(np.uint8)

    def lab(x):
        return cv2.cvtColor(x, cv2.COLOR_RGB2LAB).astype(float)

    out = match_monochrome(pink, hole, grey)
    np.testing.assert_array_equal(out[~hole], grey[~hole])
    assert np.abs(lab(out)[hole][:, 1:] - 128).max() <= 1  # no colour left
    assert np.abs(lab(out)[hole][:, 0] - lab(pink)[hole][:, 0]).max() <= 2  # the same lightness
    sepia = cv2.cvtColor(np.dstack([lab(grey)[..., 0], np.full((128, 128), 140.0), np.full((128, 128), 150.0)])
                         .astype(np.uint8), cv2.COLOR_LAB2RGB)
    toned = lab(match_monochrome(np.where(hole[..., None], pink, sepia).astype(np.uint8), hole, sepia))[hole]
    assert np.abs(toned[:, 1:] - [140, 150]).max() <= 2
    colour = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    mixed = np.where(hole[..., None], pink, colour).astype(np.uint8)
    np.testing.assert_array_equal(match_monochrome(mixed, hole, colour), mixed)


def test_unmask_paints_no_colour_into_a_black_and_white_photo(monkeypatch):
    import torch

    import unmasked.pipelines.unmask as unmask
    from unmasked.models.base import InpaintModel, InpaintOutput

    rgb, face = _photo_with_a_long_green_mask()
    green = np.all(rgb == (0, 255, 0), axis=2)
    grey = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    photo = np.where(green[..., None], rgb, grey).astype(np.uint8)  # a grey photo, a green mask
    monkeypatch.setattr(unmask, "detect_faces", lambda image, detector="all": [face])

    class Pink(InpaintModel):
        multiple, working_size = 8, 128

        def forward(self, image, mask, reference=None):
            return InpaintOutput(torch.tensor([0.6, -0.1, 0.2]).view(1, 3, 1, 1).expand_as(image).clone())

    result = unmask_array(photo, Pink(), segmenter=_GreenSegmenter(), mean_face=False, grain=False)
    assert result.faces[0].mask_found and result.region.sum() > 0.5 * green.sum()
    restored = result.image[result.region].astype(int)
    assert (restored.max(axis=1) - restored.min(axis=1)).max() <= 3  # grey, not pink


def test_the_masks_straps_beside_the_repainted_region_are_filled_too(astronaut):
    """A surgical mask with white straps to the ears: with ``ear_loops`` (the default) far fewer
    strap pixels stay in the photo than without, and nothing else changes away from the mask and
    its straps; on the face without straps the loop finder changes nothing."""
    import cv2

    from unmasked.faces import face_from_box
    from unmasked.masks.face_mask import put_face_mask

    face = face_from_box(astronaut, ASTRONAUT_BOX)
    masked, hole = put_face_mask(astronaut, face, np.random.default_rng(0), kind="surgical")
    # white straps from the mask's sides past the ears (jaw points 0 and 16)
    strapped, lm = masked.copy(), face.landmarks
    rows = np.nonzero(hole.any(axis=1))[0]
    y = int(rows.min() + 0.25 * (rows.max() - rows.min()))
    sides = np.nonzero(hole[y])[0]
    lines = np.zeros(hole.shape, np.uint8)
    for x, ear, out in ((sides.min(), lm[0], -8), (sides.max(), lm[16], 8)):
        cv2.line(lines, (int(x), y), (int(ear[0] + out), int(ear[1])), 1, 2)
    loops = lines.astype(bool) & ~hole
    strapped[loops] = 245
    drawn = loops & (np.abs(strapped.astype(int) - astronaut).max(axis=2) > 30)
    telea = load_model("telea")
    out = {on: unmask_array(strapped, telea, boxes=[ASTRONAUT_BOX], ear_loops=on).image for on in (False, True)}
    left = {on: (np.abs(out[on].astype(int) - strapped)[drawn].max(axis=1) <= 8).sum() for on in out}
    assert drawn.sum() > 50 and left[True] < 0.5 * left[False]
    straps = cv2.dilate(loops.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    changed = np.any(out[True] != out[False], axis=2)
    assert changed.any() and not (changed & ~straps).any()  # only the straps' pixels and their edge
    plain = [unmask_array(masked, telea, boxes=[ASTRONAUT_BOX], ear_loops=on).image for on in (False, True)]
    np.testing.assert_array_equal(plain[0], plain[1])


@pytest.mark.data
def test_a_real_white_ear_loop_is_removed(shared_data):
    """A real photo (a white 3M N95 with white loops to the ears): the loop beside the right ear, left by
    the repainted region, is found and filled; the photo changes only near the face."""
    rgb = load_image(shared_data / "real_masked_photos" / "0004_0009.jpg").rgb
    model = load_model("telea")
    off = unmask_array(rgb, model, ear_loops=False, grain=False)
    on = unmask_array(rgb, model, grain=False)
    changed = np.any(on.image != off.image, axis=2)
    assert 5 < changed.sum() < 400
    x, y, w, h = on.faces[0].box
    ys, xs = np.nonzero(changed)
    assert xs.min() > x + w / 2 and x - w / 4 < xs.max() < x + 1.5 * w and y < ys.mean() < y + h


def test_skin_below_eyes_is_the_skin_coloured_band_under_the_eyes(astronaut):
    """The band below the eyes (their outlines grown by ``reach``), outside the segmenter's fabric:
    the pixels coloured like that band's own skin are returned, fabric-coloured ones are not, and
    nothing without enough sure fabric or on a black and white photo."""
    from unmasked.faces import align_face, detect_faces
    from unmasked.pipelines.unmask import EYE_SKIN, eye_guard, skin_below_eyes

    aligned = align_face(astronaut, detect_faces(astronaut)[0], 128)
    lm = aligned.landmarks
    image = np.full((128, 128, 3), (200, 150, 130), np.uint8)  # skin
    rows = np.arange(128)[:, None].repeat(128, 1)
    image[rows < 20] = (60, 90, 160)  # a blue background above the head: a colour photo
    top = int(lm[36:48, 1].max()) + 4  # the mask's top edge, 4 px under the eyes' lowest point
    prob = np.where(rows >= top + 3, 0.95, 0.0).astype(np.float32)
    image[rows >= top] = (235, 235, 240)  # a white mask; its top 3 rows missed by the segmenter
    band = eye_guard(lm, 128, EYE_SKIN) & ~eye_guard(lm, 128, 0.0) & (rows > lm[36:48, 1].mean())
    skin = skin_below_eyes(image, prob, lm)
    assert skin.any() and not (skin & ~band).any()  # only in the band
    assert (skin == (band & (rows < top))).all()  # its skin, not the missed white fabric
    # a skin-coloured mask: a pink fabric 12 CIELAB units from the skin; the band is still the skin's
    pink = image.copy()
    pink[rows >= top] = (215, 160, 150)
    assert (skin_below_eyes(pink, prob, lm) == (band & (rows < top))).all()
    assert not skin_below_eyes(image, np.zeros_like(prob), lm).any()  # no sure fabric, nothing
    grey = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert not skin_below_eyes(grey, prob, lm).any()  # black and white: lightness alone cannot tell


@pytest.mark.data
def test_colour_growth_leaves_the_skin_below_the_eyes_of_a_pink_mask(shared_data):
    """A real photo with a pink mask, as pale as the skin: GrabCut grew the hole up to the lower
    eyelids; with the skin below the eyes as sure background it stops at the mask's top edge."""
    from unmasked.faces import align_face, detect_faces
    from unmasked.hub import DEFAULT_SEGMENTER, load_segmenter
    from unmasked.pipelines.unmask import eye_guard, grow_by_colour, segment_aligned

    rgb = load_image(shared_data / "real_masked_photos" / "0001_0094.jpg").rgb
    aligned = align_face(rgb, detect_faces(rgb)[0], 128)
    prob = segment_aligned(load_segmenter(DEFAULT_SEGMENTER), aligned.image)
    near = eye_guard(aligned.landmarks, 128, 0.04)  # within 5 px of the eyes' outlines
    grown = {on: grow_by_colour(aligned.image, prob, aligned.landmarks, eye_skin=on) for on in (False, True)}
    assert (grown[False] & near).sum() > 150  # without it: the band up to the eyelids
    assert (grown[True] & near).sum() < 0.25 * (grown[False] & near).sum()
    assert (grown[True] >= (prob > 0.5)).all()  # the prediction itself is kept
    assert grown[True].sum() > 1.1 * (prob > 0.5).sum()  # and the growth over the missed fabric too


@pytest.mark.data
def test_the_cli_keeps_the_skin_below_the_eyes_unless_told_not_to(shared_data, tmp_path):
    """``--no-eye-skin`` gives the colour growth the skin below the eyes back: on the pink mask the
    photo's own pixels there are kept by default and repainted without it."""
    src = shared_data / "real_masked_photos" / "0001_0094.jpg"
    rgb = load_image(src).rgb.astype(np.int16)
    repainted = {}
    for flag in ("--eye-skin", "--no-eye-skin"):
        out = tmp_path / f"{flag}.png"
        r = CliRunner().invoke(main, ["unmask", str(src), "-o", str(out), "--model", "telea", "--no-grain", flag])
        assert r.exit_code == 0, r.output
        repainted[flag] = (np.abs(load_image(out).rgb.astype(np.int16) - rgb).max(axis=2) > 8).sum()
    assert repainted["--no-eye-skin"] > repainted["--eye-skin"] + 100, repainted


def test_face_dilation_is_at_least_the_photos_pixels():
    """3 % of the crop, or DILATE_PHOTO_PX of the photo's pixels where the crop scales the face up
    more: known values at 0.5, 1 and 3.6 crop pixels a photo pixel."""
    from unmasked.pipelines.unmask import DILATE, DILATE_PHOTO_PX, face_dilation

    def matrix(scale):  # a similarity with that scale and a rotation
        c, s = scale * np.cos(0.3), scale * np.sin(0.3)
        return np.array([[c, -s, 5.0], [s, c, -7.0]])

    assert DILATE_PHOTO_PX == 2.5
    assert face_dilation(matrix(0.5), 128) == DILATE  # a 256² face: 1.25 crop pixels < 3.84
    assert face_dilation(matrix(1.0), 128) == DILATE
    assert face_dilation(matrix(3.6), 128) == pytest.approx(2.5 * 3.6 / 128)  # 9 crop pixels
    assert face_dilation(matrix(3.6), 128, photo_px=0) == DILATE
    assert face_dilation(matrix(3.6), 256) == pytest.approx(2.5 * 3.6 / 256)


@pytest.mark.data
def test_a_small_faces_hole_is_grown_by_the_photos_pixels(shared_data):
    """A face 22 px wide (a purple mask, found on the second look): its hole grows by 2.5 photo
    pixels, not one, and the pipeline's options say how; a face 107 px wide keeps its hole."""
    model = load_model("telea")
    small = load_image(shared_data / "real_masked_photos" / "0006_0097.jpg").rgb
    holes = {px: unmask_array(small, model, keep_stages=True, grain=False, ear_loops=False,
                              min_dilate_px=px).stages[0].hole for px in (0.0, 2.5)}
    assert (holes[2.5] >= holes[0.0]).all() and holes[2.5].sum() > 1.3 * holes[0.0].sum()
    large = load_image(shared_data / "real_masked_photos" / "0001_0094.jpg").rgb
    same = [unmask_array(large, model, keep_stages=True, grain=False, ear_loops=False,
                         min_dilate_px=px).stages[0].hole for px in (0.0, 2.5)]
    np.testing.assert_array_equal(same[0], same[1])
    with pytest.raises(ValueError, match="min_dilate_px"):
        unmask_array(large, model, min_dilate_px=-1)
