"""The web console, served at ``/console/`` (a placeholder until the console lands)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse


def mount(app: FastAPI) -> None:
    """Serve the console's pages on ``app`` at ``/console/``."""

    @app.get("/console/", include_in_schema=False)
    def console() -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>durable console</title><p>console</p>")
