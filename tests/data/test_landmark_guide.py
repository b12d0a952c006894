"""The landmark drawing that guides a landmark-guided face fill, and its training jitter."""

import numpy as np
import pytest

from unmasked.data.landmark_guide import (
    LOWER,
    UNDER_MASK_OFFSET,
    draw_landmark_guide,
    jitter_landmarks,
    unmasked_guess,
)
from unmasked.layers.face_template import FFHQ_MEAN_LANDMARKS


def _mean(size=128):
    """The mean FFHQ-aligned face's landmarks (stored as fractions of the side) in pixels."""
    return np.asarray(FFHQ_MEAN_LANDMARKS, np.float64) * size


def test_guide_draws_the_contours_where_the_landmarks_are():
    lm = _mean()
    guide = draw_landmark_guide(lm, 128)
    assert guide.dtype == np.float32 and guide.shape == (128, 128)
    assert 0 <= guide.min() and guide.max() <= 1 and guide.max() > 0.5
    ys, xs = np.nonzero(guide > 0.3)
    assert lm[:, 0].min() - 2 <= xs.min() and xs.max() <= lm[:, 0].max() + 2
    assert lm[:, 1].min() - 2 <= ys.min() and ys.max() <= lm[:, 1].max() + 2
    # every landmark lies on a drawn line (the lips' midpoints included)
    for x, y in lm:
        assert guide[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].max() > 0.3
    # a thin drawing, not a filled face
    assert (guide > 0.3).mean() < 0.1
    assert draw_landmark_guide(lm * [1.0, 0.5], (64, 128)).shape == (64, 128)


def test_the_guide_is_the_same_drawing_at_any_working_size():
    """Lines 1 px wide per 128 px: at 256² the drawing is the 128² one scaled up, so a model grown
    from 128² to 256² sees its guide with the strength it learned (1 px lines at 256² carried about
    half the ink)."""
    import cv2

    mean = np.asarray(FFHQ_MEAN_LANDMARKS, np.float64)
    small = draw_landmark_guide(mean * 128, 128)
    big = draw_landmark_guide(mean * 256, 256)
    shrunk = cv2.resize(big, (128, 128), interpolation=cv2.INTER_AREA)
    assert 0.8 < shrunk.sum() / small.sum() < 1.4
    on_lines = small > 0.5
    assert shrunk[on_lines].mean() > 0.6  # where the 128² drawing has a line, the shrunk 256² one has one too


def test_guide_refuses_bad_landmarks():
    with pytest.raises(ValueError, match="68, 2"):
        draw_landmark_guide(np.zeros((5, 2)), 64)
    bad = _mean()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        draw_landmark_guide(bad, 128)


def test_jitter_moves_the_lower_face_more_and_is_reproducible():
    lm = _mean()
    moved = [jitter_landmarks(lm, np.random.default_rng(s), 128) for s in range(300)]
    assert np.array_equal(moved[0], jitter_landmarks(lm, np.random.default_rng(0), 128))
    err = np.stack([np.linalg.norm(m - lm, axis=1) for m in moved])
    upper = np.setdiff1d(np.arange(68), LOWER)
    assert 1.0 < err[:, upper].mean() < 4.0  # a few pixels at 128, as FaceMesh's guess under a mask
    assert err[:, LOWER].mean() > err[:, upper].mean() + 0.5


def test_the_unmasked_guess_moves_the_lower_face_down_by_the_table():
    lm = _mean(256)
    guess = unmasked_guess(lm, 256)
    np.testing.assert_allclose(guess, lm - 2 * UNDER_MASK_OFFSET)
    assert (guess[48:68, 1] - lm[48:68, 1]).mean() > 6  # the mouth, ~4 px at 128
    np.testing.assert_allclose(guess[36:48], lm[36:48], atol=1.0)  # the eyes stay


@pytest.mark.data
def test_the_under_mask_table_holds_on_faces_it_was_not_measured_on(shared_data):
    """FaceMesh on 30 held-out faces with synthetic worn masks: the table (measured on training
    identities) removes most of the mouth's and chin's systematic shift."""
    from unmasked.evaluation.run import load_eval_images
    from unmasked.evaluation.unmask_eval import masked_faces, under_mask_displacements

    names, pixels = load_eval_images(shared_data / "faces" / "celeba_wild256", 256, split="val", limit=30)
    d = under_mask_displacements(masked_faces(names, pixels, seed=5))
    assert len(d) >= 25
    mouth, jaw = np.r_[48:68], np.r_[0:17]
    before = np.median(d[:, mouth, 1].mean(axis=1))
    after = np.median((d - UNDER_MASK_OFFSET)[:, mouth, 1].mean(axis=1))
    assert before < -2.0 and abs(after) < 1.5, (before, after)
    assert abs(np.median((d - UNDER_MASK_OFFSET)[:, jaw, 1].mean(axis=1))) < 1.5


@pytest.mark.data
def test_guesses_under_worn_masks_are_made_as_unmask_makes_them_and_cached(shared_data, tmp_path, monkeypatch):
    """Training guides for a landmark-guided model: FaceMesh on each face wearing a synthetic worn
    mask, aligned, corrected by the table and mapped back to the photo. The eyes, which a mask does
    not hide, land on the exact points (a wrong back-mapping would move them by the crop's scale);
    the second call reads the cache without running the detector."""
    import shutil

    import unmasked.data.mask_seg as mask_seg
    from unmasked.data.mask_seg import aligned_landmarks, under_mask_landmarks

    source = shared_data / "faces" / "celeba_wild256"
    root = tmp_path / "faces"
    for person in sorted(p for p in source.iterdir() if p.is_dir())[:2]:
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:2]:
            shutil.copy(photo, root / person.name / photo.name)
    exact = aligned_landmarks(root, tmp_path / "exact.npz", probe=4)
    guesses = under_mask_landmarks(root, tmp_path / "guess.npz", exact, variants=2, seed=3)
    assert sorted(guesses) == sorted(exact) and len(guesses) == 4
    found = 0
    for key, g in guesses.items():
        assert g.shape == (2, 68, 2)
        for variant in g[np.isfinite(g[:, 0, 0])]:
            found += 1
            # px at 256; a crop-frame guess left unmapped would be tens of px off
            assert np.median(np.linalg.norm(variant[36:48] - exact[key][36:48], axis=1)) < 6.0
            assert not np.allclose(variant[48:68], exact[key][48:68], atol=0.5)  # the mouth is a guess
    assert found >= 6

    monkeypatch.setattr(mask_seg, "detect_faces", lambda *a, **k: pytest.fail("the cache was not used"))
    again = under_mask_landmarks(root, tmp_path / "guess.npz", exact, variants=2, seed=3)
    for key in guesses:
        np.testing.assert_array_equal(again[key], guesses[key])


def test_mouth_opening_is_the_inner_lip_gap_over_the_eye_distance():
    from unmasked.data.landmark_guide import mouth_opening

    lm = np.zeros((68, 2))
    lm[36:42] = [30.0, 40.0]
    lm[42:48] = [130.0, 40.0]  # eye centres 100 px apart
    lm[62] = [80.0, 120.0]
    lm[66] = [80.0, 128.0]  # inner lips 8 px apart
    assert mouth_opening(lm) == pytest.approx(0.08)
    batch = np.stack([lm, lm * 2.0])  # scale-free, and batched
    np.testing.assert_allclose(mouth_opening(batch), [0.08, 0.08])
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        mouth_opening(np.zeros((5, 2)))


def test_the_mean_face_guide_draws_its_dark_lines_where_the_points_put_them():
    from unmasked.data.landmark_guide import draw_guide

    pts = _mean()
    guide = draw_guide(pts, 128, "mean_face")
    assert guide.shape == (128, 128) and guide.dtype == np.float32 and 0 <= guide.min() and guide.max() <= 1
    assert (guide > 0.3).mean() < 0.1  # soft lines on nothing, as the contours' drawing is
    x, y = np.round(pts[60:68].mean(axis=0)).astype(int)  # between the lips
    assert guide[y - 1:y + 2, x - 3:x + 4].max() > 0.6 and guide[y - 6, x - 3:x + 4].max() < 0.3  # not the philtrum
    moved = pts.copy()
    moved[48:68] += (0.0, 6.0)  # the mouth 6 px lower: the line goes with it
    again = draw_guide(moved, 128, "mean_face")
    assert again[y + 6 - 1:y + 6 + 2, x - 3:x + 4].max() > 0.6 and again[y - 1:y + 2, x - 3:x + 4].max() < 0.3
    np.testing.assert_array_equal(draw_guide(pts, 128, "lines"), draw_landmark_guide(pts, 128))
    with pytest.raises(ValueError, match="unknown guide kind"):
        draw_guide(pts, 128, "photo")
    with pytest.raises(ValueError, match="square"):
        draw_guide(pts, (128, 96), "mean_face")
