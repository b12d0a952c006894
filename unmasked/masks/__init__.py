"""Mask generators (explicit numpy Generator), mask folders, and mask statistics. 1 = hole."""

from unmasked.masks.folder import MaskBank, MaskFolder, MaskRecord, generate_masks
from unmasked.masks.generators import (
    MASK_KINDS,
    box_mask,
    bucketed_mask,
    free_form_mask,
    irregular_mask,
    make_mask,
)
from unmasked.masks.stats import HOLE_RATIO_BUCKETS, bucket_label, bucket_of, hole_ratio, touches_border

__all__ = [
    "HOLE_RATIO_BUCKETS",
    "MASK_KINDS",
    "MaskBank",
    "MaskFolder",
    "MaskRecord",
    "box_mask",
    "bucket_label",
    "bucket_of",
    "bucketed_mask",
    "free_form_mask",
    "generate_masks",
    "hole_ratio",
    "irregular_mask",
    "make_mask",
    "touches_border",
]
