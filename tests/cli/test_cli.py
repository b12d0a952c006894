"""The command line's frame: every command is listed by ``unmasked --help`` without importing it,
with its own one-line help, and ``unmasked --help`` loads neither torch nor OpenCV."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from unmasked.cli import COMMANDS, LazyGroup, main


def test_every_command_loads_and_its_listed_help_is_its_own():
    ctx = click.Context(main)
    for name, (_, _, listed) in COMMANDS.items():
        cmd = main.get_command(ctx, name)
        assert isinstance(cmd, click.Command) and cmd.name == name
        assert listed == cmd.get_short_help_str(limit=80), f"COMMANDS[{name!r}] help differs from the command's"


def test_help_lists_every_command_and_an_unknown_one_is_refused():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for name in COMMANDS:
        assert f"\n  {name} " in r.output
    r = CliRunner().invoke(main, ["fil"])
    assert r.exit_code == 2 and "No such command 'fil'" in r.output
    assert isinstance(main, LazyGroup)


def test_help_does_not_import_torch_or_opencv():
    code = ("import sys; from unmasked.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'cv2', 'unmasked.api') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
