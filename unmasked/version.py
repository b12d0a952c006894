"""The version of unmasked (re-exported as ``unmasked.__version__``)."""

__version__ = "0.1.0"
