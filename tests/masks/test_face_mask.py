"""Synthetic worn face masks (unmasked.masks.face_mask, the MaskTheFace method) and `unmasked masks face`."""

import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked.cli import main
from unmasked.conventions import load_mask
from unmasked.data import face_masks as fmd
from unmasked.data.face_masks import landmarks_cache
from unmasked.faces.landmarks import FFHQ_MEAN_LANDMARKS, head_tilt, six_points
from unmasked.masks import templates as tm
from unmasked.masks.face_mask import face_mask_for_aligned, put_face_mask
from unmasked.masks.procedural import PROCEDURAL_KINDS, procedural_template
from unmasked.masks.templates import TemplateSet

WILD = ["7201/001085.jpg", "7215/020701.jpg", "7230/016369.jpg"]
#: hole ratio of a worn mask on an FFHQ-aligned 128 x 128 face (measured 0.06-0.33, means 0.11-0.22 by type)
HOLE_RATIO_BAND = (0.05, 0.36)


def _mean_face(size: int = 128) -> np.ndarray:
    return FFHQ_MEAN_LANDMARKS * size


def _textured(size: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(60, 200, (16, 16, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)


def _at(hole: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.round(points).astype(int)
    return hole[p[:, 1], p[:, 0]]


def _check_covers(hole: np.ndarray, lm: np.ndarray) -> None:
    assert _at(hole, lm[48:68]).all(), "mouth not covered"
    assert _at(hole, lm[30:31]).all(), "nose tip not covered"
    eyes = np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)])
    assert not _at(hole, eyes).any(), "eyes covered"
    assert not _at(hole, lm[[37, 38, 43, 44]]).any(), "upper eyelids covered"


def _check_exact(rgb: np.ndarray, masked: np.ndarray, hole: np.ndarray) -> None:
    assert masked.dtype == np.uint8 and masked.shape == rgb.shape and hole.dtype == bool
    assert np.array_equal(masked[~hole], rgb[~hole])  # hard composite: nothing changes outside the hole
    assert np.any(masked != rgb, axis=2)[hole].mean() > 0.9


# --------------------------------------------------------------------------- geometry


def test_six_points_follow_the_face():
    lm = _mean_face()
    a, b, c, d, e, f = six_points(lm)
    assert a[0] < b[0] < c[0] and d[0] < e[0] < f[0]
    assert lm[27, 1] < b[1] < lm[30, 1]  # nose bridge
    assert b[1] < a[1] < d[1] < e[1] and b[1] < c[1] < f[1] < e[1]
    assert abs(a[1] - (lm[36:48, 1].mean() + lm[30, 1] - lm[27, 1])) < 1.0  # cheeks at eyes + nose length
    assert np.hypot(*(e - lm[8])) < 3.0  # chin
    for p in (a, c, d, f):  # on the jaw line
        assert np.min(np.hypot(*(lm[0:17] - p).T)) < 0.06 * 128
    # the points rotate with the face
    m = cv2.getRotationMatrix2D((64, 64), 25, 1.0)
    rotated = lm @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(six_points(rotated), six_points(lm) @ m[:, :2].T + m[:, 2], atol=1e-6)


def test_head_tilt_from_nose_position():
    lm = _mean_face()
    assert head_tilt(lm)[0] == "front"
    turned = lm.copy()
    turned[27:36] -= [20, 0]
    assert head_tilt(turned)[0] == "left"
    turned[27:36] += [40, 0]
    assert head_tilt(turned)[0] == "right"


# --------------------------------------------------------------------------- procedural templates


@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_procedural_masks_need_no_files(kind):
    rgb = _textured()
    lm = _mean_face()
    masked, hole = put_face_mask(rgb, lm, np.random.default_rng(3), kind=kind)
    _check_exact(rgb, masked, hole)
    _check_covers(hole, lm)
    assert HOLE_RATIO_BAND[0] < hole.mean() < HOLE_RATIO_BAND[1]
    again, hole2 = put_face_mask(rgb, lm, np.random.default_rng(3), kind=kind)
    assert np.array_equal(again, masked) and np.array_equal(hole2, hole)  # the rng decides everything


def test_procedural_template_is_annotated_rgba():
    rng = np.random.default_rng(0)
    colours = set()
    for _ in range(6):
        t = procedural_template("cloth", rng, scale=0.5)
        assert t.rgba.shape[2] == 4 and t.points.shape == (6, 2)
        opaque = t.rgba[..., 3] > 127
        assert opaque.mean() > 0.4
        p = np.round(t.points).astype(int)
        inner = (p[1] + p[4]) // 2  # between nose bridge and chin: on the mask
        assert opaque[inner[1], inner[0]]
        colours.add(tuple(t.rgba[inner[1], inner[0], :3] // 32))
    assert len(colours) > 1  # random colours
    with pytest.raises(ValueError, match="unknown procedural mask"):
        procedural_template("gas", rng)
    with pytest.raises(ValueError, match="unknown mask type"):
        put_face_mask(_textured(), _mean_face(), rng, kind="gas")


def test_brightness_follows_the_face():
    lm = _mean_face()
    dark, bright = np.full((128, 128, 3), 40, np.uint8), np.full((128, 128, 3), 220, np.uint8)
    m_dark, hole = put_face_mask(dark, lm, np.random.default_rng(1), kind="kn95")
    m_bright, _ = put_face_mask(bright, lm, np.random.default_rng(1), kind="kn95")
    assert m_dark[hole].mean() + 60 < m_bright[hole].mean()


def test_face_mask_for_aligned_without_landmarks():
    ratios = []
    for seed in range(6):
        masked, hole = face_mask_for_aligned(128, np.random.default_rng(seed))
        assert masked is None and hole.shape == (128, 128)
        ratios.append(hole.mean())
    assert HOLE_RATIO_BAND[0] < min(ratios) and max(ratios) < HOLE_RATIO_BAND[1]
    assert len(set(ratios)) > 1  # jittered
    rgb = _textured()
    masked, hole = face_mask_for_aligned(128, np.random.default_rng(0), image=rgb, kind="surgical")
    _check_exact(rgb, masked, hole)
    with pytest.raises(ValueError, match="must be"):
        face_mask_for_aligned(64, np.random.default_rng(0), image=rgb)


# --------------------------------------------------------------------------- template folders


def _tiny_template_folder(root):
    (root / "templates").mkdir(parents=True)
    rgba = np.zeros((50, 60, 4), np.uint8)
    rgba[5:45, 5:55] = (200, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(root / "templates" / "red.png")
    (root / "masks.cfg").write_text(
        "[red]\ntemplate: masks/templates/red.png\nmask_a: 6, 8\nmask_b: 30, 5\nmask_c: 54, 8\n"
        "mask_d: 6, 38\nmask_e: 30, 44\nmask_f: 54, 38\n\n;[red_left]\n;template: x.png\n\n[empty]\n"
    )
    return root


def test_template_folder_reader(tmp_path):
    ts = TemplateSet.from_folder(_tiny_template_folder(tmp_path / "masks"))
    assert len(ts) == 1 and ts.kinds == ["red"]
    t = ts.get("RED", "left")  # case-insensitive; no left variant -> front
    assert t.rgba.shape == (50, 60, 4) and t.points[4].tolist() == [30, 44]
    rgb = _textured()
    masked, hole = put_face_mask(rgb, _mean_face(), np.random.default_rng(0), kind="random", templates=ts)
    _check_exact(rgb, masked, hole)
    assert masked[hole][:, 0].mean() > masked[hole][:, 1].mean() + 40  # red
    with pytest.raises(ValueError, match="no template 'blue'"):
        put_face_mask(rgb, _mean_face(), np.random.default_rng(0), kind="blue", templates=ts)
    with pytest.raises(FileNotFoundError, match="masks.cfg"):
        TemplateSet.from_folder(tmp_path)


def test_maskthe_face_templates(shared_data):
    ts = TemplateSet.from_folder(shared_data / "mask_the_face" / "masks")
    assert len(ts) == 21
    assert ts.kinds == ["cloth", "gas", "kn95", "n95", "surgical", "surgical_blue", "surgical_green"]
    assert ts.get("n95", "left").name == "n95_left" and ts.get("surgical", "right").name == "surgical_right"
    t = ts.template("surgical")
    assert t.rgba.shape == (496, 594, 4) and t.points.tolist()[0] == [21, 97]
    lm = _mean_face()
    for kind in ("surgical", "surgical_blue", "n95", "kn95", "cloth"):
        masked, hole = put_face_mask(_textured(), lm, np.random.default_rng(0), kind=kind, templates=ts)
        _check_exact(_textured(), masked, hole)
        _check_covers(hole, lm)
        assert HOLE_RATIO_BAND[0] < hole.mean() < HOLE_RATIO_BAND[1]


# --------------------------------------------------------------------------- real faces


def test_masks_on_real_aligned_faces(shared_data):
    from unmasked.faces import align_face, detect_faces

    ts = TemplateSet.from_folder(shared_data / "mask_the_face" / "masks")
    for i, name in enumerate(WILD[:2]):
        rgb = np.asarray(Image.open(shared_data / "faces" / "celeba_wild256" / name).convert("RGB"))
        aligned = align_face(rgb, detect_faces(rgb, detector="hog")[0], 128)
        lm = aligned.landmarks
        for kind, templates in (("surgical", None), ("kn95", None), ("surgical", ts), ("n95", ts)):
            masked, hole = put_face_mask(aligned.image, lm, np.random.default_rng(i), kind=kind, templates=templates)
            _check_exact(aligned.image, masked, hole)
            _check_covers(hole, lm)
            assert HOLE_RATIO_BAND[0] < hole.mean() < HOLE_RATIO_BAND[1]


def test_placement_matches_maskedface_net(shared_data):
    """A surgical mask put on landmarks detected on a MaskedFace-Net photo lands where its labelled mask is."""
    from unmasked.faces import detect_faces

    folder = shared_data / "masked_faces_seg" / "CWM"
    for name in ("00002", "00004"):
        rgb = np.asarray(Image.open(folder / "images" / f"{name}.jpg").convert("RGB"))
        labelled = np.asarray(Image.open(folder / "labels" / f"{name}.png")) == 2  # 2 = face mask
        face = detect_faces(rgb, detector="hog")[0]
        _, hole = put_face_mask(rgb, face, np.random.default_rng(0), kind="surgical")
        iou = (hole & labelled).sum() / (hole | labelled).sum()
        assert iou > 0.55, iou  # measured mean 0.76 (procedural) / 0.70 (MaskTheFace template) over 30 photos


def test_landmarks_cache(shared_data, tmp_path, monkeypatch):
    folder = tmp_path / "faces"
    for name in WILD:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "faces" / "celeba_wild256" / name, folder / name)
    cache = tmp_path / "cache" / "lm128.npz"
    found = landmarks_cache(folder, 128, cache, detector="hog")
    assert sorted(found) == sorted(WILD) and cache.is_file()
    for lm in found.values():
        assert lm.shape == (68, 2) and 0 <= lm.min() and lm.max() < 128
        assert np.abs(lm - FFHQ_MEAN_LANDMARKS * 128).mean() < 10  # an aligned face, at 128 px

    import unmasked.data.face_masks

    def no_detection(*args, **kwargs):
        raise AssertionError("cached landmarks must not be detected again")

    monkeypatch.setattr(unmasked.data.face_masks, "detect_faces", no_detection)
    again = landmarks_cache(folder, 128, cache)
    assert sorted(again) == sorted(found)
    np.testing.assert_allclose(again[WILD[0]], found[WILD[0]], atol=1e-4)  # stored as float32

    monkeypatch.undo()
    Image.fromarray(np.full((128, 128, 3), 100, np.uint8)).save(folder / "blank.png")
    third = landmarks_cache(folder, 128, cache, detector="hog")
    assert "blank.png" not in third and len(third) == 3
    with np.load(cache) as z:
        assert z["missing"].tolist() == ["blank.png"]
    masked, hole = face_mask_for_aligned(128, np.random.default_rng(0), landmarks=third[WILD[1]], kind="cloth")
    assert HOLE_RATIO_BAND[0] < hole.mean() < HOLE_RATIO_BAND[1]


def test_cli_masks_face(shared_data, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "faces" / "celeba_wild256" / WILD[0], src / "a.jpg")
    shutil.copy(shared_data / "faces" / "celeba_wild256" / WILD[2], src / "sub" / "b.jpg")
    Image.fromarray(np.full((48, 48, 3), 30, np.uint8)).save(src / "empty.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["masks", "face", "--input-dir", str(src), "--output-dir", str(out),
                                       "--type", "surgical", "--detector", "hog", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "masked 2 faces in 2 images; 1 images without a face" in result.output
    for rel, orig in (("a", src / "a.jpg"), ("sub/b", src / "sub" / "b.jpg")):
        masked = np.asarray(Image.open(out / f"{rel}.png").convert("RGB"))
        hole = load_mask(out / f"{rel}_mask.png")
        rgb = np.asarray(Image.open(orig).convert("RGB"))
        _check_exact(rgb, masked, hole)
        assert HOLE_RATIO_BAND[0] / 4 < hole.mean() < HOLE_RATIO_BAND[1]
    assert not (out / "empty.png").exists()

    bad = CliRunner().invoke(main, ["masks", "face", "--input-dir", str(src), "--output-dir", str(out), "--type", "gas"])
    assert bad.exit_code == 1 and "unknown mask type 'gas'" in bad.output


def test_mask_folder_is_reproducible(tmp_path, monkeypatch):
    import unmasked.data.face_masks

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_textured(96)).save(src / "x.png")
    monkeypatch.setattr(unmasked.data.face_masks, "detect_faces", lambda rgb, detector="auto": [FFHQ_MEAN_LANDMARKS * 96])
    a = list(fmd.mask_folder(src, tmp_path / "a", seed=5))
    list(fmd.mask_folder(src, tmp_path / "b", seed=5))
    list(fmd.mask_folder(src, tmp_path / "c", seed=6))
    assert [(x.status, x.faces) for x in a] == [("masked", 1)]
    assert (tmp_path / "a" / "x.png").read_bytes() == (tmp_path / "b" / "x.png").read_bytes()
    assert (tmp_path / "a" / "x.png").read_bytes() != (tmp_path / "c" / "x.png").read_bytes()


# --------------------------------------------------------------------------- colours and patterns


def test_restyle_template_blends_with_the_templates_shading():
    flat = tm.Template("flat", np.dstack([np.full((20, 30, 3), 200, np.uint8), np.full((20, 30), 255, np.uint8)]),
                       np.zeros((6, 2)))
    assert np.array_equal(tm.restyle_template(flat, colour="black", weight=0.0).rgba, flat.rgba)
    # a flat template has shading 1: weight 1 gives the colour exactly, 0.5 the mean of the two
    assert (tm.restyle_template(flat, colour="#102030", weight=1.0).rgba[..., :3] == (16, 32, 48)).all()
    assert (tm.restyle_template(flat, colour=(0, 100, 250), weight=0.5).rgba[..., :3] == (100, 150, 225)).all()
    # a fold (darker band) stays darker after recolouring; alpha and key points are kept
    folded = flat.rgba.copy()
    folded[8:12, :, :3] = 120
    t = tm.restyle_template(tm.Template("f", folded, np.ones((6, 2))), colour="white", weight=1.0)
    assert t.rgba[10, 5, 0] < t.rgba[2, 5, 0] - 40
    assert np.array_equal(t.rgba[..., 3], folded[..., 3]) and t.points.tolist() == np.ones((6, 2)).tolist()
    # a texture picture is resized onto the canvas (MaskTheFace's --pattern)
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 255
    patterned = tm.restyle_template(flat, texture=stripes, weight=1.0).rgba[..., :3]
    assert patterned.std() > 50
    for kwargs, match in (({}, "exactly one"), ({"colour": "red", "texture": stripes}, "exactly one"),
                          ({"colour": "nope"}, "unknown colour"), ({"colour": "#12345"}, "unknown colour"),
                          ({"colour": (0, 300, 0)}, "0..255"), ({"colour": "black", "weight": 1.5}, r"\[0, 1\]"),
                          ({"texture": np.zeros((4, 4), np.uint8)}, "uint8 RGB")):
        with pytest.raises(ValueError, match=match):
            tm.restyle_template(flat, **kwargs)


def test_restyled_masks_keep_the_hole_and_change_the_colour():
    rgb, lm = _textured(), _mean_face()
    plain, hole = put_face_mask(rgb, lm, np.random.default_rng(3), kind="surgical")
    black, hole2 = put_face_mask(rgb, lm, np.random.default_rng(3), kind="surgical", colour="black", weight=1.0)
    assert np.array_equal(hole, hole2)
    _check_exact(rgb, black, hole)
    assert black[hole].mean() < plain[hole].mean() - 80  # dark even after brightness matching
    # variety: reproducible from the rng, and over seeds both dark and light masks appear
    means = []
    for seed in range(30):
        a, h = face_mask_for_aligned(128, np.random.default_rng(seed), image=rgb, variety=True)
        b, _ = face_mask_for_aligned(128, np.random.default_rng(seed), image=rgb, variety=True)
        _, h_plain = face_mask_for_aligned(128, np.random.default_rng(seed), image=rgb)
        assert np.array_equal(a, b) and np.array_equal(h, h_plain)
        means.append(a[h].mean())
    assert min(means) < 70 and max(means) > 150
    with pytest.raises(ValueError, match="textures/ subfolder"):
        put_face_mask(rgb, lm, np.random.default_rng(0), texture="random")


def test_template_folder_textures(tmp_path):
    root = _tiny_template_folder(tmp_path / "masks")
    ts = TemplateSet.from_folder(root)
    assert ts.textures == []
    (root / "textures" / "check").mkdir(parents=True)
    pattern = np.zeros((16, 16, 3), np.uint8)
    pattern[::4] = (0, 255, 0)
    Image.fromarray(pattern).save(root / "textures" / "check" / "green.png")
    (root / "textures" / "notes.txt").write_text("not a picture")
    assert ts.textures == []  # listed once per template set
    ts = TemplateSet.from_folder(root)
    assert [p.name for p in ts.textures] == ["green.png"]
    rgb = _textured()
    masked, hole = put_face_mask(rgb, _mean_face(), np.random.default_rng(0), kind="red", templates=ts,
                                 texture="random", weight=1.0)
    _check_exact(rgb, masked, hole)
    assert masked[hole][:, 1].mean() > masked[hole][:, 0].mean()  # green stripes over the red template


def test_mask_folder_colour_and_errors(tmp_path, monkeypatch):
    import unmasked.data.face_masks

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_textured(96)).save(src / "x.png")
    monkeypatch.setattr(unmasked.data.face_masks, "detect_faces", lambda rgb, detector="auto": [FFHQ_MEAN_LANDMARKS * 96])
    runner = CliRunner()
    ok = runner.invoke(main, ["masks", "face", "--input-dir", str(src), "--output-dir", str(tmp_path / "o"),
                              "--type", "kn95", "--colour", "navy", "--weight", "1"])
    assert ok.exit_code == 0, ok.output
    masked = np.asarray(Image.open(tmp_path / "o" / "x.png").convert("RGB")).astype(int)
    hole = load_mask(tmp_path / "o" / "x_mask.png")
    assert masked[hole][:, 2].mean() > masked[hole][:, 0].mean() + 20  # navy: blue over red
    for args, message in ((["--colour", "reddish"], "unknown colour"), (["--texture", "random"], "textures/ subfolder"),
                          (["--texture", str(tmp_path / "none.png")], "cannot read texture"),
                          (["--colour", "black", "--texture", "random"], "not both")):
        bad = runner.invoke(main, ["masks", "face", "--input-dir", str(src), "--output-dir", str(tmp_path / "b"), *args])
        assert bad.exit_code == 1 and message in bad.output, bad.output
    assert not (tmp_path / "b").exists()  # nothing written before the options were checked


def test_decal_prints_on_the_fabric_only():
    t = procedural_template("surgical", np.random.default_rng(0), scale=0.3)
    changed_any = False
    for seed in range(8):
        d = tm.add_decal(t, np.random.default_rng(seed))
        assert np.array_equal(d.rgba[..., 3], t.rgba[..., 3]) and np.array_equal(d.points, t.points)
        diff = np.any(d.rgba[..., :3] != t.rgba[..., :3], axis=2)
        assert not diff[t.rgba[..., 3] <= 127].any()  # never outside the mask
        assert diff.mean() < 0.1  # a mark, not a new colour
        changed_any |= bool(diff.any())
        if diff.any():  # contrasting: far from the light-blue/white/green fabric
            assert np.abs(d.rgba[..., :3][diff].astype(int) - t.rgba[..., :3][diff]).max() > 60
    assert changed_any
