"""Reference photos: alignment, the gallery index (cache, identities, threshold, exclusion)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from unmasked.conventions import save_image
from unmasked.pipelines.reference import Gallery, aligned_reference


class PixelEmbedder:
    """A stand-in identity embedder: the normalised 8x8 thumbnail (counts its calls)."""

    name, dim, differentiable = "pixels", 192, True

    def __init__(self):
        self.calls = 0

    def embed(self, images, landmarks=None):
        self.calls += len(images)
        e = F.adaptive_avg_pool2d(images, 8).flatten(1)
        return F.normalize(e - e.mean(dim=1, keepdim=True), dim=1)


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def test_aligned_reference_finds_the_face_or_says_there_is_none(astronaut):
    face = aligned_reference(astronaut, 64)
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8
    with pytest.raises(ValueError, match="no face found in the reference photo"):
        aligned_reference(np.full((96, 96, 3), 127, np.uint8), 64)


def test_gallery_matches_the_right_identity_caches_and_respects_the_threshold(tmp_path, astronaut):
    root = tmp_path / "gallery"
    save_image(root / "eileen" / "a.png", astronaut)
    save_image(root / "eileen" / "b.png", np.ascontiguousarray(astronaut[:, ::-1]))  # mirrored photo
    dark = (astronaut.astype(np.float32) * 0.35).astype(np.uint8)
    dark[..., 0] = 255 - dark[..., 0]  # another "person": very different colours
    save_image(root / "other.png", dark)
    save_image(root / "cat.png", data.chelsea())  # no face: skipped
    emb = PixelEmbedder()
    gallery = Gallery.build(root, embedder=emb, size=64, threshold=0.3)
    assert sorted(gallery.paths) == ["eileen/a.png", "eileen/b.png", "other.png"]
    assert sorted(set(gallery.identities)) == ["eileen", "other"]
    assert gallery.skipped == ["cat.png"]
    query = aligned_reference(astronaut, 64)
    m = gallery.match(query)
    assert m.identity == "eileen" and m.path == root / "eileen" / "a.png"
    assert m.similarity > 0.99 and m.distance == pytest.approx(1 - m.similarity)
    # never the photo being filled itself
    assert gallery.match(query, exclude="eileen/a.png").path == root / "eileen" / "b.png"
    # a stranger below the threshold gets no reference
    stranger = np.zeros_like(query)
    stranger[::2] = 255
    assert gallery.match(stranger) is None
    # the cache: a second build embeds nothing new; a changed photo is embedded again
    calls = emb.calls
    Gallery.build(root, embedder=emb, size=64, threshold=0.3)
    assert emb.calls == calls
    save_image(root / "other.png", np.ascontiguousarray(dark[:, ::-1]))
    Gallery.build(root, embedder=emb, size=64, threshold=0.3)
    assert emb.calls == calls + 1


def test_gallery_without_faces_is_a_clear_error(tmp_path):
    save_image(tmp_path / "cat.png", data.chelsea())
    with pytest.raises(ValueError, match="no face found in any photo"):
        Gallery.build(tmp_path, embedder=PixelEmbedder(), size=64)
    with pytest.raises(ValueError, match="gallery folder not found"):
        Gallery.build(tmp_path / "missing", embedder=PixelEmbedder(), size=64)


def test_pixel_embedder_is_unit_norm():
    e = PixelEmbedder().embed(torch.rand(2, 3, 16, 16))
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))


def test_fill_with_reference_changes_only_the_hole_and_uses_the_reference_on_the_face(astronaut):
    from unmasked import create_model
    from unmasked.pipelines.fill import InputError
    from unmasked.pipelines.inpaint import inpaint

    torch.manual_seed(0)
    model = create_model("two_face", cnum=8, working_size=64).eval()
    seen = []
    forward = model.forward

    def recording_forward(image, mask, reference=None):
        seen.append(None if reference is None else (tuple(image.shape), tuple(reference.shape), mask.mean().item()))
        return forward(image, mask, reference)

    model.forward = recording_forward
    rgb = np.ascontiguousarray(astronaut[:256, 96:352])  # the face, 256 x 256
    hole = np.zeros(rgb.shape[:2], bool)
    hole[130:175, 100:170] = True  # mouth and chin
    a = inpaint(rgb, hole, model, reference=astronaut)
    assert "filled with the reference photo" in a.note
    assert np.array_equal(a.image[~hole], rgb[~hole])
    assert not np.array_equal(a.image[hole], rgb[hole])
    # a plain fill of the whole hole first, then the aligned 64x64 face with the aligned reference
    assert seen[0] is None
    assert seen[-1][:2] == ((1, 3, 64, 64), (1, 3, 64, 64)) and 0.02 < seen[-1][2] < 0.6
    with pytest.raises(ValueError, match="no face found in the reference photo"):
        inpaint(rgb, hole, model, reference=np.full((64, 64, 3), 90, np.uint8))
    with pytest.raises(InputError, match="does not use a reference photo"):
        inpaint(rgb, hole, create_model("telea"), reference=astronaut)


def test_default_gallery_uses_dlib_and_recognises_the_same_person(tmp_path, astronaut):
    save_image(tmp_path / "eileen" / "mirrored.png", np.ascontiguousarray(astronaut[:, ::-1]))
    gallery = Gallery.build(tmp_path, size=128)
    assert gallery.embedder.name == "dlib" and gallery.threshold == pytest.approx(0.91)
    m = gallery.match(aligned_reference(astronaut, 128))
    assert m is not None and m.identity == "eileen" and m.similarity > 0.91


def test_paired_gain_reports_mean_interval_and_gap_closed():
    from unmasked.evaluation.reference import paired_gain

    rng = np.random.default_rng(0)
    without = rng.uniform(0.85, 0.9, 400)
    with_ref = without + 0.02 + rng.normal(0, 0.01, 400)
    ceiling = np.full(400, without.mean() + 0.08)
    g = paired_gain(with_ref, without, ceiling)
    assert g["ci95"][0] < g["mean"] < g["ci95"][1] and g["ci95"][0] > 0.015  # clearly positive
    assert abs(g["gap_closed"] - 0.25) < 0.02 and g["faces_gaining"] > 0.95
    # no effect: the interval straddles zero
    g0 = paired_gain(without + rng.normal(0, 0.01, 400), without, ceiling)
    assert g0["ci95"][0] < 0 < g0["ci95"][1]


def test_large_holes_lie_in_the_issue_range_and_unknown_kinds_are_refused():
    from unmasked.evaluation.reference import holes_for

    targets = np.zeros((13, 64, 64, 3), np.uint8)
    holes = holes_for(targets, "large", seed=1)
    assert len(holes) == 13
    assert all(0.3 < h.mean() <= 0.6 for h in holes)
    assert any(h.mean() <= 0.3 for h in holes_for(targets, "bucketed", seed=1))
    with pytest.raises(ValueError, match="unknown hole kind"):
        holes_for(targets, "huge")


def test_reference_evaluation_reports_dlib_distance_same_person_share_and_realism(shared_data):
    from unmasked.evaluation.reference import evaluate_reference, format_table

    r = evaluate_reference(["telea"], shared_data / "faces" / "celeba_wild256", size=128, limit=8, mask_kind="large")
    rows = {(x["model"], x["bucket"]): x for x in r["rows"]}
    truth, telea = rows[("ground truth (ceiling)", "all")], rows[("telea", "all")]
    # the photo itself is the ceiling: nearer the probe than a fill of a third of its face or more
    assert truth["distance"] < telea["distance"] and 0.2 < truth["distance"] < 0.8
    assert 0 <= telea["same_person"] <= truth["same_person"] <= 1
    assert 0 <= telea["realism"] <= 1 and "realism" not in truth
    table = format_table(r)
    assert "distance ↓" in table and "under 0.6" in table


def test_a_face_square_is_where_the_reference_goes_even_where_no_face_is_detected(astronaut):
    """The user's face square is the face: the reference is used there (and the note says so),
    even on a photo where no detector finds a face."""
    from unmasked import create_model
    from unmasked.pipelines.inpaint import inpaint

    torch.manual_seed(0)
    model = create_model("two_face", cnum=8, working_size=64).eval()
    seen = []
    forward = model.forward
    model.forward = lambda image, mask, reference=None: (seen.append(reference is not None), forward(image, mask, reference))[1]
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([x * 255 // 320, y * 255 // 240, ((x // 8 + y // 8) % 2) * 200 + 20], -1).astype(np.uint8)
    hole = np.zeros(rgb.shape[:2], bool)
    hole[110:150, 140:180] = True
    r = inpaint(rgb, hole, model, box=(100, 40, 120, 120), reference=astronaut)
    assert seen[-1] is True and "filled with the reference photo" in r.note
    assert np.array_equal(r.image[~hole], rgb[~hole])


def _group_photo(astronaut):
    """A reference photo with two faces: the person, small, on the left; a larger mirrored face
    (standing in for someone else) on the right. The left face square: (0, 48, 160, 160)."""
    import cv2

    face = np.ascontiguousarray(astronaut[:256, 96:352])
    group = np.full((256, 416, 3), 90, np.uint8)
    group[48:208, :160] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_AREA)
    group[:, 160:] = face[:, ::-1]
    return group, face


def test_a_reference_face_square_picks_that_face_instead_of_the_largest(astronaut):
    from unmasked.pipelines.fill import InputError

    group, face = _group_photo(astronaut)
    own = aligned_reference(face, 64).astype(float)
    mirrored = aligned_reference(np.ascontiguousarray(face[:, ::-1]), 64).astype(float)
    largest = aligned_reference(group, 64).astype(float)
    squared = aligned_reference(group, 64, box=(0, 48, 160, 160)).astype(float)  # a loose square, as users draw
    assert np.abs(largest - mirrored).mean() < 12 < 30 < np.abs(largest - own).mean()
    assert np.abs(squared - own).mean() < 12 < 30 < np.abs(squared - mirrored).mean()
    with pytest.raises(InputError, match="lies outside the 416x256 reference photo"):
        aligned_reference(group, 64, box=(300, 0, 200, 200))


def test_fill_uses_the_reference_face_square_and_refuses_it_without_a_reference(astronaut):
    from unmasked import create_model
    from unmasked.conventions import image_to_tensor
    from unmasked.pipelines.fill import InputError
    from unmasked.pipelines.inpaint import inpaint

    torch.manual_seed(0)
    model = create_model("two_face", cnum=8, working_size=64).eval()
    seen = []
    forward = model.forward
    model.forward = lambda image, mask, reference=None: (seen.append(reference), forward(image, mask, reference))[1]
    group, face = _group_photo(astronaut)
    hole = np.zeros(face.shape[:2], bool)
    hole[130:175, 100:170] = True
    box = (0, 48, 160, 160)
    r = inpaint(face, hole, model, reference=group, reference_box=box)
    assert "filled with the reference photo" in r.note
    expected = image_to_tensor(aligned_reference(group, 64, box=box))
    torch.testing.assert_close(seen[-1], expected)
    # with a face square on the target too
    inpaint(face, hole, model, reference=group, reference_box=box, box=(60, 40, 150, 150))
    torch.testing.assert_close(seen[-1], expected)
    with pytest.raises(InputError, match="a reference face square needs a reference photo"):
        inpaint(face, hole, model, reference_box=box)
    with pytest.raises(InputError, match="lies outside the 416x256 reference photo"):
        inpaint(face, hole, model, reference=group, reference_box=(0, 0, 500, 100))
