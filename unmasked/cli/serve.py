"""``unmasked serve``: the web app and REST API."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from unmasked.cli.common import fail, run
from unmasked.server import ServerSettings, create_app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; the default is this machine only.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--workers", default=2, show_default=True, help="Requests computed at the same time (threads).")
@click.option("--queue", "queue_size", default=32, show_default=True,
              help="Requests allowed to wait for a worker; beyond that the server answers 503.")
@click.option("--max-pixels", default=16_000_000, show_default=True, type=click.IntRange(min=1),
              help="Per image, checked from the header before decoding.")
@click.option("--max-body-mb", default=32.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Largest request body, in MiB.")
@click.option("--model", "models", multiple=True, help="Offer only these models (repeatable); default: all presets and baselines.")
@click.option("--study-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Realism study images (real/ + one folder per model, see `unmasked study prepare`); enables /study.")
@click.option("--study-db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file for the study's ratings.  [default: STUDY_DIR/ratings.sqlite]")
def serve_cmd(host, port, workers, queue_size, max_pixels, max_body_mb, models, study_dir, study_db) -> None:
    """Run the web app and REST API (http://HOST:PORT/, API docs at /docs).

    \b
    Example:
      unmasked serve                      # then open http://127.0.0.1:8000/
      unmasked serve --study-dir study/ --study-db ratings.sqlite
    """
    if study_db is not None and study_dir is None:
        fail("--study-db needs --study-dir")
    settings = ServerSettings(max_pixels=max_pixels, max_body_bytes=int(max_body_mb * 1024 * 1024), workers=workers,
                              queue_size=queue_size, models=list(models) or None, study_dir=study_dir, study_db=study_db)
    app = run(create_app, settings)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host}: anyone who can reach this address can use the server", err=True)
    click.echo(f"unmasked: open http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/  (API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")
