"""The MCP server, driven by the MCP Python SDK's own client: over streamable HTTP at `searchsvc serve`'s /mcp
(behind its keys) and over stdio (`searchsvc mcp`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import cli_env, make_settings
from tests.servers import serving

pytestmark = pytest.mark.mcp
RW, RO = "mcp-rw-key", "mcp-ro-key"
NOTE = {"id": "quokka", "title": "Quokkas", "text": "Quokkas are small marsupials that live on Rottnest Island."}
EVERY_TOOL = ["list_collections", "search", "fetch", "ask", "add_document", "delete_document"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    settings = make_settings(tmp_path_factory.mktemp("mcp"))
    env = cli_env(settings, SEARCHSVC_API_KEYS=f"{RW}:rw,{RO}:ro")
    with serving(env) as url:
        native = url.removesuffix("/v1")
        added = httpx.post(f"{native}/v1/collections/notes/documents", json={"documents": [NOTE]},
                           headers={"Authorization": f"Bearer {RW}"}, timeout=60)  # fmt: skip
        assert added.status_code == 200, added.text
        yield native, env


def over_http(native: str, key: str, scheme: str = "Bearer") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"{scheme} {key}"}, timeout=60)
    return Client(streamable_http_client(f"{native}/mcp", http_client=http))


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content.get("result", result.structured_content)


def test_every_tool_over_http_with_a_read_write_key(served: tuple[str, dict[str, str]]) -> None:
    async def session() -> None:
        async with over_http(served[0], RW) as client:
            assert [t.name for t in (await client.list_tools()).tools] == EVERY_TOOL
            assert structured(await client.call_tool("list_collections", {}))[0]["name"] == "notes"
            hits = structured(
                await client.call_tool("search", {"query": "Where do quokkas live?", "collection": "notes"})
            )
            assert hits[0]["document"] == "quokka" and "Rottnest" in hits[0]["text"]
            whole = structured(await client.call_tool("fetch", {"document": "quokka", "collection": "notes"}))
            chunk = structured(
                await client.call_tool("fetch", {"chunk_id": hits[0]["chunk_id"], "collection": "notes"})
            )
            assert whole["chunks"] == chunk["chunks"] and whole["title"] == "Quokkas"
            answer = structured(
                await client.call_tool("ask", {"question": "Where do quokkas live?", "collection": "notes"})
            )
            assert answer["answered"] and answer["citations"][0]["document_key"] == "quokka"
            note = {"id": "wombat", "text": "Wombats dig burrows.", "collection": "notes", "metadata": {"kind": "x"}}
            assert structured(await client.call_tool("add_document", note))["added"] == 1
            found = structured(await client.call_tool("search", {"query": "burrows", "collection": "notes", "k": 1}))
            assert found[0]["document"] == "wombat" and found[0]["metadata"] == {"kind": "x"}
            gone = structured(await client.call_tool("delete_document", {"id": "wombat", "collection": "notes"}))
            assert gone["chunks_removed"] == 1
            resource = await client.read_resource("searchsvc://collections/notes/documents/quokka")
            assert resource.contents[0].text == NOTE["text"]
            missing = await client.call_tool("fetch", {"document": "nope", "collection": "notes"})
            assert missing.is_error and "no document 'nope'" in missing.content[0].text

    anyio.run(session)


def test_a_read_only_key_sees_and_calls_read_tools_only_and_no_key_is_refused(
    served: tuple[str, dict[str, str]],
) -> None:
    async def session() -> None:
        async with over_http(served[0], RO, scheme="bearer") as client:  # the scheme in any case, as HTTP allows
            assert [t.name for t in (await client.list_tools()).tools] == EVERY_TOOL[:4]
            assert structured(await client.call_tool("search", {"query": "quokkas", "collection": "notes"}))
            refused = await client.call_tool("add_document", {"id": "x", "text": "y", "collection": "notes"})
            assert refused.is_error and "read-only" in refused.content[0].text

    anyio.run(session)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(f"{served[0]}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers=headers, timeout=10)  # fmt: skip
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_stdio_serves_the_same_tools(served: tuple[str, dict[str, str]]) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "searchsvc", "mcp"], env=served[1])

    async def session() -> None:
        async with Client(params) as client:
            assert [t.name for t in (await client.list_tools()).tools] == EVERY_TOOL
            answer = structured(
                await client.call_tool("ask", {"question": "Where do quokkas live?", "collection": "notes"})
            )
            assert answer["answer"].startswith("Quokkas") and answer["mode"] == "extractive"

    anyio.run(session)
