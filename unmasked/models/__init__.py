"""Learned inpainting models, one file per paper; importing this package registers them."""
