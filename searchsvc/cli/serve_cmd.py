"""``searchsvc serve``."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

import typer

from searchsvc.cli import Interrupted, app
from searchsvc.config import Settings
from searchsvc.logs import configure_json_logging, logging_config


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API: /v1/search, /v1/ask, documents and collections; OpenAPI docs at /docs.

    Logs are JSON lines on stderr; Prometheus metrics at /metrics; /healthz and /readyz for probes.
    """
    settings: Settings = ctx.obj
    configure_json_logging()
    _limit_malloc_arenas()
    try:  # uvicorn stops gracefully on Ctrl-C, then raises the signal again: a normal end for a server
        _run(settings, host, port, workers)
    except Interrupted:
        return


def _run(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from searchsvc.api.app import create_app

    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_config=logging_config())
        return
    # Worker processes build their settings from the environment: hand them the CLI's flags that way.
    for name, value in (
        ("SEARCHSVC_DATA_DIR", settings.data_dir),
        ("SEARCHSVC_DATABASE_URL", settings.database_url),
        ("SEARCHSVC_INDEX_DIR", settings.index_dir),
    ):
        if value is not None:
            os.environ[name] = str(value)
    uvicorn.run(
        "searchsvc.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=logging_config(),
    )


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc malloc arenas: with dozens of request threads each taking its own arena, a busy
    server's memory grows with fragmentation instead of staying flat (as MALLOC_ARENA_MAX does)."""
    import ctypes
    import ctypes.util

    m_arena_max = -8
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(m_arena_max, arenas)
