"""Classical (non-learned) fillers behind the model interface; importing registers them.

``layout_patchmatch`` is classical too (nothing of it is trained but the frozen layout network it
is built on), so it registers here, next to the ``telea_patchmatch`` it extends."""

from unmasked.baselines.classical import ClassicalBaseline, NavierStokes, PatchMatch, Telea
from unmasked.baselines.layout_patchmatch import LayoutPatchMatch

__all__ = ["ClassicalBaseline", "LayoutPatchMatch", "NavierStokes", "PatchMatch", "Telea"]
