"""The web page at ``/ui`` (``/`` redirects there): static HTML, CSS and JavaScript shipped in the package
(``searchsvc/api/ui/``), no build step and nothing fetched from elsewhere, calling the public HTTP API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_FILES = Path(__file__).parent / "ui"


def install_ui(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=UI_FILES, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/")
