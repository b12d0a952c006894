"""Training losses: pure functions and modules, no I/O."""

from unmasked.losses.features import VGG19Relu31, model_range_to_unit
from unmasked.losses.gan import hinge_d_loss, hinge_g_loss
from unmasked.losses.pconv import PConvLoss, gram_matrix, hole_valid_l1, tv_loss

__all__ = [
    "PConvLoss",
    "VGG19Relu31",
    "gram_matrix",
    "hinge_d_loss",
    "hinge_g_loss",
    "hole_valid_l1",
    "model_range_to_unit",
    "tv_loss",
]
