"""``unmasked train``: train or resume the model a YAML config describes."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from unmasked.cli.common import fail, run
from unmasked.training import fit, load_config


def yaml_message(where: str, error: yaml.YAMLError) -> str:
    """One line for a YAML syntax error (PyYAML's own message spans several): what and where."""
    mark = getattr(error, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{where} is not valid YAML: {getattr(error, 'problem', None) or error.__class__.__name__}{at}"


@click.command("train")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Run name: the run folder is OUT_DIR/NAME.")
@click.option("--out_dir", "--out-dir", "out_dir", help="Folder holding run folders.  [config default: runs]")
@click.option("--gpus", type=int, help="Train on this many GPUs (sets accelerator=gpu).")
@click.option("--devices", type=int, help="Processes on the configured accelerator; >1 on CPU uses DDP over gloo.")
@click.option("--resume_checkpoint", "--resume-checkpoint", "resume_checkpoint",
              help="A .ckpt to resume from, or 'last' for this run's last.ckpt (ignored if absent).")
@click.option("--batch_size", "--batch-size", "batch_size", type=int)
@click.option("--lr_g", "--lr-g", "lr_g", type=float, help="Generator learning rate.")
@click.option("--lr_d", "--lr-d", "lr_d", type=float, help="Discriminator learning rate.")
@click.option("--d_every", "--d-every", "d_every", type=int, help="Discriminator step once per N batches.")
@click.option("--max_steps", "--max-steps", "max_steps", type=int, help="Total batches to train (including resumed ones).")
@click.option("--ckpt_every", "--ckpt-every", "ckpt_every", type=int, help="Batches between checkpoints.")
@click.option("--precision", help="Lightning precision, e.g. 32-true or bf16-mixed.")
@click.option("--num_workers", "--num-workers", "num_workers", type=int, help="Data loader worker processes.")
@click.option("--threads", type=int, help="torch intra-op threads per process.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any other config key, YAML-parsed, dotted for sections: --set data.size=64.")
def train_cmd(config, sets, gpus, **options) -> None:
    """Train (or resume) the model described by CONFIG (a YAML file, see configs/).

    Checkpoints every --ckpt_every batches (last.ckpt, written atomically), exports the
    generator as generator.safetensors (usable with `unmasked fill --model`), scores a fixed
    validation set, writes sample grids, and logs to CSV and TensorBoard in the run folder.

    \b
    Example:
      unmasked train configs/deepfillv2_faces-128.yaml --max_steps 2000 --resume_checkpoint last
    """
    overrides = {k: v for k, v in options.items() if v is not None}  # options not given keep the config's
    if gpus is not None:
        overrides["accelerator"], overrides["devices"] = "gpu", gpus
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set needs KEY=VALUE, got {item!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            fail(yaml_message(f"--set {item}", e))

    try:
        cfg = run(load_config, config, overrides)
    except yaml.YAMLError as e:
        fail(yaml_message(str(config), e))
    module = run(fit, cfg)
    click.echo(f"trained {module.steps_done} steps; validation {module.last_val}; run folder {cfg.run_dir}")
