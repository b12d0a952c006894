"""``unmasked models``: the catalogue of presets, baselines and architectures."""

from __future__ import annotations

import click

from unmasked.hub import DEFAULT_UNMASK_PRESET, catalogue


@click.command("models")
def models_cmd() -> None:
    """List the trained presets, baselines and architectures that --model accepts."""
    helpers = []
    for e in catalogue():
        if e.kind == "trained":
            line = f"{e.architecture} {e.kwargs} (model card: {e.path.with_suffix('.md')})"
            if e.uses_landmarks:
                default = ", the default of unmask" if e.name == DEFAULT_UNMASK_PRESET else ""
                click.echo(f"{e.name:24s} trained    {line} (unmask only: it draws the face's landmarks{default})")
            elif e.task == "inpaint":
                click.echo(f"{e.name:24s} trained    {line}")
            else:  # the worn-mask segmenter, the identity embedder, the scene layout: inside pipelines, never as --model
                helpers.append(f"{e.name:24s} {e.task:10s} {line}")
        elif e.kind == "auto":
            click.echo(f"{e.name:24s} pipeline   {e.description} (the default of `fill`)")
        else:
            kind = "architecture (needs a checkpoint)" if e.kind == "architecture" else "classical"
            click.echo(f"{e.name:24s} {kind}  {e.description}")
    if helpers:
        click.echo("\nhelper networks (the worn-mask segmenter of unmask, the identity embedder, the scene layout of "
                   "layout_patchmatch; not fill models, --model refuses them):")
        click.echo("\n".join(helpers))
