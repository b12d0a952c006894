"""Pipelines shared by the CLI, the REST server and the Python API.

:func:`~unmasked.pipelines.inpaint.inpaint` is the entry for filling a hole (sketch, reference,
gallery and face square included), :func:`~unmasked.pipelines.unmask.unmask_array` the one for
removing worn face masks; :func:`~unmasked.pipelines.fill.fill_array` fills with one model.
"""

from unmasked.pipelines.fill import FillResult, InputError, fill_array, run_model

__all__ = ["FillResult", "InputError", "fill_array", "run_model"]
