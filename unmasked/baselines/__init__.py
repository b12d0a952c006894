"""Classical (non-learned) fillers behind the model interface; importing registers them."""

from unmasked.baselines.classical import ClassicalBaseline, NavierStokes, PatchMatch, Telea

__all__ = ["ClassicalBaseline", "NavierStokes", "PatchMatch", "Telea"]
