"""Pure ``nn.Module`` building blocks (no I/O): partial, gated, attention, spectral-norm convs."""

from unmasked.layers.contextual_attention import ContextualAttention
from unmasked.layers.gated_conv import GatedConv2d, GatedUpConv2d
from unmasked.layers.partial_conv import PartialConv2d
from unmasked.layers.spectral_norm import sn_conv2d

__all__ = ["ContextualAttention", "GatedConv2d", "GatedUpConv2d", "PartialConv2d", "sn_conv2d"]
