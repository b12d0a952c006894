"""Learned inpainting models, one file per paper; importing this package registers them."""

# importing registers each model; face_identity has task "embed", mask_segmenter task "segment"
from unmasked.models import (  # noqa: F401
    deepfill_v2,
    face_identity,
    face_refiner,
    mask_segmenter,
    pconv_unet,
    two_face,
)
