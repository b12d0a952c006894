"""Classical (non-learned) fillers behind the model interface; importing registers them."""

from unmasked.baselines.classical import ClassicalBaseline, NavierStokes, Telea

__all__ = ["ClassicalBaseline", "NavierStokes", "Telea"]
