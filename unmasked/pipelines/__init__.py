"""Pipelines shared by the CLI, the REST server and the Python API."""

from unmasked.pipelines.fill import FillResult, InputError, fill_array, run_model

__all__ = ["FillResult", "InputError", "fill_array", "run_model"]
