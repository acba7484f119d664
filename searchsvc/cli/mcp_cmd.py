"""``searchsvc mcp``: the MCP server over stdio, for clients that start their servers as processes."""

from __future__ import annotations

import anyio
import typer

from searchsvc.api.deps import Services
from searchsvc.api.mcp import SearchsvcMCP
from searchsvc.api.write_queue import UpsertQueue
from searchsvc.cli import app
from searchsvc.config import Settings
from searchsvc.runtime import QueryProviders
from searchsvc.store import Store


@app.command()
def mcp(ctx: typer.Context) -> None:
    """Serve searchsvc's MCP tools (list_collections, search, fetch, ask, add_document, delete_document) and
    its documents as resources over stdin/stdout, for MCP clients that start servers as processes
    (Claude Desktop, IDEs): command `searchsvc`, argument `mcp`. Every tool is offered: whoever starts the
    process owns the data. `searchsvc serve` offers the same over HTTP at /mcp, behind its API keys."""
    settings: Settings = ctx.obj
    store = Store(settings)
    providers = QueryProviders.open(settings, store)
    embedders, chat = providers.embedders, providers.chat
    services = Services(settings, store, embedders, chat, upserts=None)  # type: ignore[arg-type]
    services.upserts = UpsertQueue(services.ingest, settings.max_queued_documents)
    try:
        anyio.run(SearchsvcMCP(settings, lambda: services).run_stdio_async)
    finally:
        services.upserts.close()
        providers.close()
        store.close()
