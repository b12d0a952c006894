"""What every command shares: user errors end in one line and exit code 1, never a traceback."""

from __future__ import annotations

import click

#: errors a user can cause; anything else is a bug and keeps its traceback
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                                                FileExistsError, PermissionError)

MAX_PIXELS_HELP = "Refuse images with more pixels than this (checked before decoding)."


def fail(message: str) -> None:
    raise click.ClickException(message)


def message(error: BaseException) -> str:
    """The one line a user error is reported with."""
    if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename:  # an output below a file
        return f"cannot write to {error.filename}: a file is in the way where a folder is needed"
    return str(error)


def run(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, a user error turned into a one-line message."""
    try:
        return fn(*args, **kwargs)
    except USER_ERRORS as e:
        fail(message(e))


def parse_box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected x,y,w,h as four integers, got {text!r}") from None
    return x, y, w, h
