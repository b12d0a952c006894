"""REST API and web UI (FastAPI): ``create_app`` builds the app, ``unmasked serve`` runs it."""

from unmasked.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
