"""``unmasked`` command line: parse, call a library function, print.

One module per command group (``fill.py``, ``unmask.py``, ``masks.py``, ``evaluate.py``,
``train.py``, ``serve.py``, ``study.py``, ``models.py``); each imports what it needs at the top.
:class:`LazyGroup` imports a command's module only when that command runs, so ``unmasked
--help`` lists every command from :data:`COMMANDS` without loading torch or OpenCV. Every user
error ends in a one-line message and exit code 1 or 2, never a traceback (:mod:`.common`).
"""

from __future__ import annotations

import importlib

import click

#: command -> (module under unmasked.cli, attribute, the one-line help ``unmasked --help`` shows;
#: a test checks it is the command's own)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "eval": ("evaluate", "eval_cmd", "Score models and baselines per hole-ratio bucket x border (L1 %, PSNR, SSIM,..."),
    "eval-identity": ("evaluate", "eval_identity_cmd", "Face verification ROC-AUC of dlib, MobileFaceNet and our embedders on the..."),
    "eval-unmask": ("evaluate", "eval_unmask_cmd", "Score mask removal end to end: synthetic worn masks on held-out faces, the..."),
    "fill": ("fill", "fill_cmd", "Fill the hole of IMAGE given by --mask and write --output."),
    "masks": ("masks", "masks_group", "Generate hole masks (free-form strokes, irregular, boxes, bucketed by hole..."),
    "models": ("models", "models_cmd", "List the trained presets, baselines and architectures that --model accepts."),
    "serve": ("serve", "serve_cmd", "Run the web app and REST API (http://HOST:PORT/, API docs at /docs)."),
    "study": ("study", "study_group", "Realism study: prepare the images, then collect 1-10 ratings at /study..."),
    "train": ("train", "train_cmd", "Train (or resume) the model described by CONFIG (a YAML file, see configs/)."),
    "unmask": ("unmask", "unmask_cmd", "Remove worn face masks in PHOTO (a file or a folder) and restore the faces..."),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported from :data:`COMMANDS` when first used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"unmasked.cli.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="unmasked")
def main() -> None:
    """Deep image inpainting: fill holes in photos with learned models or classical baselines.

    Images are any RGB/RGBA/greyscale file Pillow reads; masks are images where white
    (> 127) marks the hole. Run `unmasked COMMAND --help` for each command's options.
    """
