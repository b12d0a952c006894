"""Learned models, one file per paper. Each registers itself when its module is imported;
:mod:`unmasked.registry` imports them all (``_BUILTIN_MODULES``) before it lists or builds one, so
importing :mod:`unmasked.models.base` alone stays light and free of cycles."""
