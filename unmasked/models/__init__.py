"""Learned inpainting models, one file per paper; importing this package registers them."""

from unmasked.models import deepfill_v2, pconv_unet  # noqa: F401  (registration)
