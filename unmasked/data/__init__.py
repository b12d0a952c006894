"""Datasets with on-the-fly masks (image folders, identity folders and pairs, MNIST)."""

from unmasked.data.datasets import (
    CROPS,
    IdentityFolderDataset,
    IdentityPairDataset,
    ImageFolderDataset,
    MNISTDataset,
    crop_and_resize,
    identity_split,
    list_images,
    scan_identities,
)

__all__ = [
    "CROPS",
    "IdentityFolderDataset",
    "IdentityPairDataset",
    "ImageFolderDataset",
    "MNISTDataset",
    "crop_and_resize",
    "identity_split",
    "list_images",
    "scan_identities",
]
