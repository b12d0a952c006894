"""Mask generators (explicit numpy Generator), mask folders, and mask statistics. 1 = hole.

Worn face masks (MaskTheFace method) are in :mod:`unmasked.masks.face_mask`.
"""

from unmasked.masks.face_mask import (
    PROCEDURAL_KINDS,
    TemplateSet,
    face_mask_for_aligned,
    put_face_mask,
    put_face_masks,
)
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
    "PROCEDURAL_KINDS",
    "TemplateSet",
    "box_mask",
    "bucket_label",
    "bucket_of",
    "bucketed_mask",
    "face_mask_for_aligned",
    "free_form_mask",
    "generate_masks",
    "hole_ratio",
    "irregular_mask",
    "make_mask",
    "put_face_mask",
    "put_face_masks",
    "touches_border",
]
