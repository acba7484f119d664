"""The MCP server: searchsvc's collections as tools and resources for any MCP client (the MCP Python SDK 2.x).

Served by `searchsvc serve` at ``/mcp`` (stateless streamable HTTP, JSON responses) behind the same bearer
keys as the HTTP API: without a key (when keys are set) the request is a 401; a read-only key sees and
calls the read tools only. `searchsvc mcp` serves the same over stdio, for clients that start their
servers as processes (with every tool: the user who starts it owns the data).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from anyio import to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from searchsvc import __version__
from searchsvc.api.auth import key_scope
from searchsvc.api.deps import Services
from searchsvc.api.mcp_tools import McpTools
from searchsvc.config import Settings

WRITE_TOOLS = {"add_document", "delete_document"}
READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
INSTRUCTIONS = (
    "searchsvc searches document collections by meaning and by words. Call list_collections to see what "
    "there is, search to find passages (each with its document and location), fetch to read a whole "
    "document or chunk, and ask for an answer written from the passages with numbered citations."
)


def bearer_token(header: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header (the scheme in any case, as HTTP allows)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class SearchsvcMCP(MCPServer):
    """An MCPServer whose write tools exist only for callers whose key may write."""

    def __init__(self, settings: Settings, services: Callable[[], Services]) -> None:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        super().__init__("searchsvc", version=__version__, instructions=INSTRUCTIONS)
        root.handlers[:], root.level = handlers, level  # the SDK calls logging.basicConfig: logs stay searchsvc's
        self.keys: dict[str, str] = settings.service_keys
        self.tools = McpTools(services)
        register_tools(self, self.tools)

    def may_write(self, headers: Any) -> bool:
        """Stdio (no headers) and servers without keys write; over HTTP with keys, only a read-write key."""
        if headers is None or not self.keys:
            return True
        return key_scope(self.keys, bearer_token(headers.get("authorization"))) == "rw"

    async def _handle_list_tools(self, ctx: Any, params: Any) -> ListToolsResult:
        listed = await super()._handle_list_tools(ctx, params)
        if self.may_write(getattr(ctx.request, "headers", None)):
            return listed
        return ListToolsResult(tools=[t for t in listed.tools if t.name not in WRITE_TOOLS])

    async def _handle_call_tool(self, ctx: Any, params: CallToolRequestParams) -> Any:
        if params.name in WRITE_TOOLS and not self.may_write(getattr(ctx.request, "headers", None)):
            message = f"{params.name} needs a read-write key; this key is read-only (SEARCHSVC_API_KEYS)"
            return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)
        return await super()._handle_call_tool(ctx, params)


def threaded(call: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """``call`` in a worker thread: the tools block (SQL, embeddings, chat)."""

    async def run(*args: Any, **kwargs: Any) -> Any:
        return await to_thread.run_sync(lambda: call(*args, **kwargs))

    return run


def register_tools(server: MCPServer, tools: McpTools) -> None:
    """The tools, described for a model choosing among them."""
    register_read_tools(server, tools)
    register_write_tools(server, tools)


def register_read_tools(server: MCPServer, tools: McpTools) -> None:
    @server.tool(annotations=READ_ONLY)
    async def list_collections() -> list[dict[str, Any]]:
        """The collections there are to search: name, embedding model, documents and chunks each."""
        return await threaded(tools.list_collections)()

    @server.tool(annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=4096, description="What to look for, in plain words.")],
        collection: Annotated[
            str | None, Field(description="Collection to search; the default one if left out.")
        ] = None,
        k: Annotated[int, Field(ge=1, le=50, description="How many passages.")] = 8,
        mode: Annotated[
            Literal["hybrid", "vector", "keyword"], Field(description="hybrid is best for most questions.")
        ] = "hybrid",
        filter: Annotated[
            dict[str, Any] | None, Field(description='Only matching documents, e.g. {"metadata.format": "markdown"}.')
        ] = None,
    ) -> list[dict[str, Any]]:
        """Find the passages of a collection that best match a query, best first: each with its text, score,
        document key, title and location (file, headings, lines or page). Use fetch to read more around one."""
        return await threaded(tools.search)(query, collection, k, mode, filter)

    @server.tool(annotations=READ_ONLY)
    async def fetch(
        document: Annotated[str | None, Field(description="A document key a search result named.")] = None,
        chunk_id: Annotated[int | None, Field(description="A chunk_id a search result named.")] = None,
        collection: Annotated[str | None, Field(description="The collection; the default one if left out.")] = None,
    ) -> dict[str, Any]:
        """Read a whole document (by its key: every chunk in order, with locations) or one chunk (by chunk_id)."""
        return await threaded(tools.fetch)(document, chunk_id, collection)

    @server.tool(annotations=READ_ONLY)
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=4096, description="The question, in plain words.")],
        collection: Annotated[
            str | None, Field(description="Collection to answer from; the default if left out.")
        ] = None,
        k: Annotated[int, Field(ge=1, le=50, description="Passages retrieved as sources.")] = 8,
    ) -> dict[str, Any]:
        """Answer a question from a collection, citing passages as [1], [2]; the citations name the document
        and location of each, with the quoted sentence. Says it does not know when nothing relevant is found."""
        return await threaded(tools.ask)(question, collection, k)

    @server.resource("searchsvc://collections/{collection}/documents/{document}", mime_type="text/plain")
    async def document_text(collection: str, document: str) -> str:
        """A document's text, its chunks in order."""
        found = await threaded(tools.fetch)(document, None, collection)
        return "\n\n".join(chunk["text"] for chunk in found["chunks"])


def register_write_tools(server: MCPServer, tools: McpTools) -> None:
    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True))
    async def add_document(
        id: Annotated[
            str, Field(min_length=1, max_length=512, description="The document's key; the same key replaces it.")
        ],
        text: Annotated[
            str, Field(min_length=1, max_length=5_000_000, description="The document's text (Markdown welcome).")
        ],
        collection: Annotated[str | None, Field(description="Collection to add to; the default if left out.")] = None,
        title: Annotated[str | None, Field(max_length=1000, description="A title.")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Fields to filter on later.")] = None,
    ) -> dict[str, Any]:
        """Add a document to a collection (or replace the one with the same id): chunked, embedded and searchable
        once this returns."""
        return await threaded(tools.add_document)(id, text, collection, title, metadata)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True))
    async def delete_document(
        id: Annotated[str, Field(min_length=1, max_length=512, description="The document's key.")],
        collection: Annotated[str | None, Field(description="The collection; the default if left out.")] = None,
    ) -> dict[str, Any]:
        """Delete a document and its chunks from a collection; gone from search at once."""
        return await threaded(tools.delete_document)(id, collection)


class McpEndpoint:
    """The ASGI app at ``/mcp``: keys checked first (a 401 in the API's error shape), then the SDK's stateless
    streamable HTTP transport with JSON responses. DNS-rebinding protection (Host and Origin must be
    loopback) is on when no keys guard the server, and off when they do (the keys are the guard)."""

    def __init__(self, server: SearchsvcMCP) -> None:
        self.server = server
        self.inner: Starlette | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan: a new transport and session manager each time the app starts."""
        protection = TransportSecuritySettings(
            enable_dns_rebinding_protection=not self.server.keys,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        self.inner = self.server.streamable_http_app(streamable_http_path="/mcp", json_response=True,
                                                     stateless_http=True, transport_security=protection)  # fmt: skip
        try:
            async with self.server.session_manager.run():
                yield
        finally:
            self.inner = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = self.server.keys
        if keys and scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            token = bearer_token(headers.get("authorization"))
            if not token or key_scope(keys, token) is None:
                message = "a valid key is needed: send 'Authorization: Bearer <key>' (one of SEARCHSVC_API_KEYS)"
                error = {"code": "unauthorized", "message": message, "type": "authentication_error", "param": None}
                await JSONResponse({"error": error}, 401, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        if self.inner is None:
            error = {"code": "shutting_down", "message": "the server is not running", "type": "server_error"}
            await JSONResponse({"error": {**error, "param": None}}, 503)(scope, receive, send)
            return
        await self.inner(scope, receive, send)
