"""What the MCP tools do, on the same services as the HTTP routes (blocking calls: run them in a thread).

A failure the caller can fix (an unknown collection, a filter that does not compile) becomes an MCP tool
error carrying searchsvc's message, so the model sees what to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from searchsvc.answering import Answerer, AskRequest
from searchsvc.api.deps import Services
from searchsvc.errors import InvalidInputError, NotFoundError, SearchsvcError
from searchsvc.search import SearchHit, search
from searchsvc.storage import repository as repo
from searchsvc.store import validate_collection_name


@contextmanager
def as_tool_errors() -> Iterator[None]:
    try:
        yield
    except SearchsvcError as exc:
        raise ToolError(str(exc)) from exc


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk_id,
        "document": hit.document_key,
        "title": hit.title,
        "location": hit.location(),
        "score": hit.score,
        "text": hit.text,
        "metadata": hit.metadata,
    }


def chunk_json(chunk: Any) -> dict[str, Any]:
    return {
        "chunk_id": chunk.id,
        "heading_path": list(chunk.heading_path or []),
        "start_char": chunk.start_char,
        "end_char": chunk.end_char,
        "line_start": chunk.line_start,
        "line_end": chunk.line_end,
        "page": chunk.page,
        "text": chunk.text,
    }


class McpTools:
    """The MCP tools over the services ``services()`` returns (built when the server starts)."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services

    @property
    def svc(self) -> Services:
        return self._services()

    def list_collections(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "embedding_model": s.embedding_model, "documents": s.documents, "chunks": s.chunks}
            for s in self.svc.store.summaries()
        ]

    def search(
        self, query: str, collection: str | None, k: int, mode: str, filter: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        svc = self.svc
        name = svc.collection_name(collection)
        with as_tool_errors():
            hits = search(svc.store, svc.embedder_for(name), name, query, k, filter=filter, mode=mode).hits
        return [hit_json(hit) for hit in hits]

    def fetch(self, document: str | None, chunk_id: int | None, collection: str | None) -> dict[str, Any]:
        svc = self.svc
        with as_tool_errors():
            found = svc.store.get_collection(validate_collection_name(svc.collection_name(collection)))
            if (document is None) == (chunk_id is None):
                raise InvalidInputError("send either document (a document key) or chunk_id, one of the two")
            with svc.store.session() as session:
                if chunk_id is not None:
                    rows = repo.chunks_with_documents(session, [chunk_id])
                    chunk, doc = rows.get(chunk_id, (None, None))
                    if chunk is None or doc is None or doc.collection_id != found.id:
                        raise NotFoundError(f"no chunk {chunk_id} in collection {found.name!r}")
                    chunks = [chunk]
                else:
                    got = repo.get_document(session, found.id, str(document))
                    if got is None:
                        raise NotFoundError(f"no document {document!r} in collection {found.name!r}")
                    doc, chunks = got
                return {"document": doc.key, "title": doc.title, "path": doc.path,
                        "metadata": doc.doc_metadata or {}, "chunks": [chunk_json(c) for c in chunks]}  # fmt: skip

    def ask(self, question: str, collection: str | None, k: int) -> dict[str, Any]:
        svc = self.svc
        name = svc.collection_name(collection)
        with as_tool_errors():
            answerer = Answerer(svc.store, svc.embedder_for(name), svc.chat, svc.settings)
            answer = answerer.answer(AskRequest(question=question, collection=name, k=k)).as_dict()
        return {key: answer.get(key) for key in ("answer", "answered", "mode", "citations", "standalone_query")}

    def add_document(
        self, key: str, text: str, collection: str | None, title: str | None, metadata: dict[str, Any] | None
    ) -> dict[str, Any]:
        svc = self.svc
        name = svc.collection_name(collection)
        with as_tool_errors():
            validate_collection_name(name)
            report = svc.upserts.submit(name, [(key, text, title, metadata or {})])
        return {k: report[k] for k in ("collection", "added", "changed", "unchanged", "chunks")}

    def delete_document(self, key: str, collection: str | None) -> dict[str, Any]:
        svc = self.svc
        name = svc.collection_name(collection)
        with as_tool_errors():
            removed = svc.store.delete_document(name, key)
        return {"deleted": key, "collection": name, "chunks_removed": removed}
