"""``searchsvc serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from searchsvc.cli import app


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from searchsvc.api.app import create_app

    if workers == 1:
        uvicorn.run(create_app(ctx.obj), host=host, port=port, log_level="info")
    else:
        uvicorn.run("searchsvc.api.app:app_from_environment", factory=True, host=host, port=port, workers=workers)
