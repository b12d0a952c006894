"""Identity embedders: MobileFaceNet, the 5-point template warp, identity loss, ROC-AUC, shipped student."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from unmasked.evaluation.identity import roc_auc, score_pairs, threshold_at_far, verification_pairs
from unmasked.hub import load_embedder, shipped_weights
from unmasked.layers.face_template import (
    TEMPLATE_96x112,
    align_to_template,
    apply_transform,
    five_points,
    mean_landmarks,
    similarity_transform,
)
from unmasked.losses.identity import identity_loss
from unmasked.models.face_identity import FaceEmbedder, MobileFaceNet, build_student, load_mobilefacenet

MOBILEFACENET = Path(__file__).resolve().parents[3] / "shared" / "weights" / "mobilefacenet_arcface_casia.ckpt"


@pytest.fixture
def mobilefacenet_path() -> Path:
    if not MOBILEFACENET.is_file():
        pytest.skip("../shared/weights/mobilefacenet_arcface_casia.ckpt not found (research weights kept outside the repo)")
    return MOBILEFACENET


# --------------------------------------------------------------------------- architecture


def test_mobilefacenet_shape_and_size_match_the_paper_layout():
    net = MobileFaceNet().eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 112, 96))
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    state = net.state_dict()
    # the public checkpoint's layout (its model card): 333 tensors, 1,019,186 elements
    assert len(state) == 333 and sum(t.numel() for t in state.values()) == 1_019_186
    assert net.linear7.conv.kernel_size == (7, 6) and net.linear7.conv.groups == 512  # GDConv
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(1, 3, 112, 112))


@pytest.mark.data
def test_loads_the_shared_checkpoint_strictly(mobilefacenet_path):
    emb = load_mobilefacenet(mobilefacenet_path)
    ckpt = torch.load(mobilefacenet_path, map_location="cpu", weights_only=True)["net_state_dict"]
    for key, value in ckpt.items():
        assert torch.equal(emb.net.state_dict()[key], value), key
    assert not emb.training and not any(p.requires_grad for p in emb.parameters())
    out = emb.embed(torch.rand(3, 3, 128, 128) * 2 - 1)
    assert out.shape == (3, 128) and torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


# --------------------------------------------------------------------------- alignment


def test_similarity_transform_recovers_a_known_similarity():
    angle, scale, t = math.radians(12), 0.7, torch.tensor([5.0, -3.0])
    rot = scale * torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = torch.rand(2, 5, 2) * 100
    dst = src @ rot.T + t
    m = similarity_transform(src, dst)
    assert torch.allclose(m[:, :, :2], rot.expand(2, 2, 2), atol=1e-5)
    assert torch.allclose(m[:, :, 2], t.expand(2, 2), atol=1e-3)


def test_mean_ffhq_landmarks_map_onto_the_template():
    pts = five_points(mean_landmarks(128))
    template = torch.from_numpy(TEMPLATE_96x112).float()[None]
    m = similarity_transform(pts, template)
    mapped = apply_transform(m, pts)
    residual = (mapped - template).norm(dim=-1)[0]
    # measured: eyes 0.94 / 0.84 px, nose 1.56 px, mouth corners 2.47 / 2.41 px (dlib's outer lip corners
    # sit wider than the template's, which came from another landmark detector)
    assert residual[:2].max() < 1.0 and residual.max() < 2.6
    eye_dist_crop = float(pts[0, 1, 0] - pts[0, 0, 0])  # ~0.24 * 128 = 30.9 px
    assert abs(eye_dist_crop - 30.9) < 0.5
    assert float(torch.linalg.det(m[0, :, :2]).sqrt()) == pytest.approx(35.24 / 30.9, rel=0.05)


def test_warp_puts_five_dots_on_the_template_positions():
    """Dots drawn at five points of a 128 crop land on the 96 x 112 template pixels after the warp."""
    size = 128
    template = torch.from_numpy(TEMPLATE_96x112).float()
    # five source points = the template pulled back through a known similarity (exactly fittable)
    angle, scale = math.radians(-7), 0.85
    rot = scale * torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = template @ rot.T + torch.tensor([12.0, 6.0])
    lm = mean_landmarks(size).clone()
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = src[0], src[1], src[2], src[3], src[4]
    image = -torch.ones(1, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    for x, y in src:
        image[0, :, ((xx - x) ** 2 + (yy - y) ** 2) <= 2.0] = 1.0
    out = align_to_template(image, lm[None])
    assert out.shape == (1, 3, 112, 96)
    for x, y in template:
        xi, yi = int(round(float(x))), int(round(float(y)))
        assert out[0, 0, yi, xi] > 0.3, (x, y)  # a dot is here
    assert (out[0, 0] > 0.3).float().sum() < 5 * 25  # and only small dots, nowhere else


def test_gradient_flows_through_the_warp_to_the_image():
    torch.manual_seed(0)
    emb = build_student().freeze()
    image = (torch.rand(2, 3, 128, 128) * 2 - 1).requires_grad_(True)
    target = torch.nn.functional.normalize(torch.randn(2, 128), dim=1)
    identity_loss(emb.embed(image), target).backward()
    g = image.grad.abs().sum(1)[0]
    assert torch.isfinite(image.grad).all()
    assert g[50:90, 40:90].sum() > 0  # the face centre receives gradient
    assert g[:10, :10].sum() == 0  # the corner lies outside the template crop
    assert all(p.grad is None for p in emb.parameters())  # frozen: the embedder never changes


def test_frozen_embedder_stays_in_eval_mode_inside_a_training_module():
    emb = build_student().freeze()
    parent = torch.nn.ModuleDict({"e": emb, "conv": torch.nn.Conv2d(3, 3, 1)}).train()
    assert parent["conv"].training and not emb.training


# --------------------------------------------------------------------------- loss


def test_identity_loss_known_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[5.0, 0.0], [0.0, -1.0], [-4.0, 3.0]])
    assert torch.allclose(identity_loss(a, b, reduction="none"), torch.tensor([0.0, 2.0, 1.0]), atol=1e-6)
    assert identity_loss(a, b).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        identity_loss(a, b[:2])


# --------------------------------------------------------------------------- ROC-AUC


def test_roc_auc_hand_computed():
    scores = [0.9, 0.8, 0.7, 0.6, 0.55, 0.5]
    labels = [1, 1, 0, 1, 0, 0]
    assert roc_auc(scores, labels) == pytest.approx(8 / 9)  # 8 of 9 positive-negative pairs ordered right
    # ties count one half: positives {0.5, 0.7}, negatives {0.5, 0.3} -> (0.5 + 1 + 1 + 1) / 4
    assert roc_auc([0.5, 0.7, 0.5, 0.3], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert roc_auc([0.1, 0.2], [1, 0]) == 0.0
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [1, 1])


def test_roc_auc_agrees_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounding creates ties
    assert roc_auc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)


def test_threshold_at_far():
    scores = np.r_[np.linspace(0, 0.99, 100), [0.5, 0.95, 0.999]]
    labels = np.r_[np.zeros(100, bool), [True, True, True]]
    thr, tpr = threshold_at_far(scores, labels, far=0.01)  # one negative (0.99) may pass
    assert thr == pytest.approx(0.98) and tpr == pytest.approx(1 / 3)  # only 0.999 lies above it


def test_verification_pairs_are_fixed_balanced_and_correctly_labelled():
    ids = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 1)
    pairs, labels = verification_pairs(ids, max_genuine_per_identity=6, seed=3)
    assert labels.sum() == 6 + 3 and (~labels).sum() == 9  # a: C(5,2)=10 capped at 6; b: 3; c: none
    assert (ids[pairs[labels, 0]] == ids[pairs[labels, 1]]).all()
    assert (ids[pairs[~labels, 0]] != ids[pairs[~labels, 1]]).all()
    assert len({tuple(p) for p in pairs}) == len(pairs)
    again, _ = verification_pairs(ids, max_genuine_per_identity=6, seed=3)
    assert np.array_equal(pairs, again)
    emb = np.eye(3)[[0, 0, 0, 0, 0, 1, 1, 1, 2]]  # a perfect embedder
    assert score_pairs("perfect", emb, pairs, labels).roc_auc == 1.0


# --------------------------------------------------------------------------- shipped student


def test_student_round_trips_through_a_checkpoint(tmp_path):
    from unmasked.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    student = build_student().eval()
    path = save_checkpoint(student, tmp_path / "s.safetensors", metadata={"steps": 1})
    loaded = load_embedder(path)
    assert isinstance(load_checkpoint(path), FaceEmbedder) and not loaded.training
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(student.embed(x), loaded.embed(x), atol=1e-6)


def test_shipped_embedder_is_small_and_documented():
    path = shipped_weights()["face_identity"]
    assert path.is_file() and path.stat().st_size < 1_500_000
    card = path.with_suffix(".md").read_text().lower()
    assert "research" in card and "roc-auc" in card
    emb = load_embedder("face_identity")
    assert emb.checkpoint_metadata["steps"] > 0 and emb.dim == 128


def _held_out_faces(root: Path, n_ids: int, per_id: int):
    from unmasked.conventions import image_to_tensor, load_image
    from unmasked.data.datasets import identity_split, scan_identities

    groups = [(i, ps) for i, ps in scan_identities(root).items() if identity_split(i, 0.2, 0) == "val" and len(ps) >= per_id]
    images, ids = [], []
    for ident, paths in groups[:n_ids]:
        for p in paths[:per_id]:
            images.append(load_image(p).rgb)
            ids.append(ident)
    return image_to_tensor(np.stack(images)), np.array(ids)


@pytest.mark.data
def test_shipped_embedder_separates_held_out_identities(shared_data):
    x, ids = _held_out_faces(shared_data / "faces" / "celeba_wild256", n_ids=8, per_id=4)
    emb = load_embedder("face_identity")
    with torch.no_grad():
        e = torch.cat([emb.embed(torch.nn.functional.interpolate(x[i : i + 16], size=128, mode="bilinear",
                                                                 antialias=True)) for i in range(0, len(x), 16)])
    pairs, labels = verification_pairs(ids, seed=0)
    result = score_pairs("face_identity", e.numpy(), pairs, labels)
    assert result.genuine_cos > result.impostor_cos + 0.1, result
    assert result.roc_auc > 0.75, result  # model card: see the ROC-AUC table


@pytest.mark.data
def test_dlib_descriptor_tells_people_apart(shared_data):
    from unmasked.evaluation.identity import identity_similarity
    from unmasked.faces.descriptor import DlibEmbedder

    x, ids = _held_out_faces(shared_data / "faces" / "celeba_wild256", n_ids=2, per_id=2)
    dlib = DlibEmbedder()
    e = dlib.embed(x)
    assert e.shape == (4, 128) and torch.allclose(e.norm(dim=1), torch.ones(4, dtype=e.dtype), atol=1e-5)
    same = identity_similarity(dlib, x[[0, 2]], x[[1, 3]])
    other = identity_similarity(dlib, x[[0, 1]], x[[2, 3]])
    assert same.min() > other.max(), (same, other)


def test_training_faces_hold_only_training_identities(tmp_path):
    from PIL import Image

    from unmasked.data.datasets import identity_split
    from unmasked.training.identity_distill import training_faces

    root = tmp_path / "faces"
    for i in range(20):
        (root / f"{100 + i}").mkdir(parents=True)
        Image.fromarray(np.full((64, 64, 3), 10 * i, np.uint8)).save(root / f"{100 + i}" / "a.png")
    data = training_faces([root], tmp_path / "cache", size=32, log=lambda *a: None)
    expected = {f"{100 + i}" for i in range(20) if identity_split(f"{100 + i}", 0.2, 0) == "train"}
    assert set(data["identity"].tolist()) == expected and 0 < len(expected) < 20
    assert data["crops"].shape == (len(expected), 32, 32, 3)
