"""The tools an agentic answer's model may call over one collection: ``search`` and ``read``.

Every passage a tool returns becomes a numbered source (a chunk found twice keeps its first number), so
the answer may cite anything any step found. A call the model got wrong (bad JSON, a filter that does not
compile, a document of another collection) is answered with the reason, so the model can try again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from searchsvc.answering.prompt import source_block
from searchsvc.answering.types import AnswerSource, AskRequest
from searchsvc.errors import InvalidInputError
from searchsvc.fusion import FusedHit
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.tool_calls import ToolCall
from searchsvc.search import SearchHit, hydrate, search
from searchsvc.storage.schema import Chunk, Document
from searchsvc.store import Store

SEARCH_K, MAX_SEARCH_K = 5, 20
READ_CHARS, MAX_READ_CHARS = 4000, 8000

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the document collection by meaning and by words. Returns numbered passages, "
            "each with its document_id and character span. Search again with other words when the passages "
            "miss the point.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for, in plain words."},
                    "k": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_K, "description": "Passages (5)."},
                    "filter": {
                        "type": "object",
                        "description": 'Optional: only documents matching it, e.g. {"metadata.format": "markdown"} '
                        'or {"path": {"$in": ["a.md", "b.md"]}}.',
                    },
                },
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read more of one document: its passages between characters start and end (by default "
            f"the {READ_CHARS:,} characters from start; at most {MAX_READ_CHARS:,}). Use it when a passage "
            "is cut off or refers to text around it.",
            "parameters": {
                "type": "object",
                "properties": {
                    "document_id": {"type": "integer", "description": "A document_id a search returned."},
                    "start": {"type": "integer", "minimum": 0, "description": "First character (0)."},
                    "end": {"type": "integer", "minimum": 1, "description": "Character to stop before."},
                },
                "required": ["document_id"],
            },
        },
    },
]


@dataclass
class ToolOutcome:
    content: str  # what the model is shown
    sources: list[AnswerSource] = field(default_factory=list)
    error: str | None = None


class FoundSources:
    """The sources found so far, numbered in the order they were first found."""

    def __init__(self) -> None:
        self.sources: list[AnswerSource] = []
        self._by_chunk: dict[int, AnswerSource] = {}

    def add(self, hit: SearchHit) -> AnswerSource:
        if hit.chunk_id not in self._by_chunk:
            source = AnswerSource(len(self.sources) + 1, hit)
            self.sources.append(source)
            self._by_chunk[hit.chunk_id] = source
        return self._by_chunk[hit.chunk_id]


class CollectionTools:
    """Runs the model's tool calls over the request's collection (its filter always applies)."""

    def __init__(self, store: Store, embedder: EmbeddingProvider, request: AskRequest, found: FoundSources) -> None:
        self.store, self.embedder, self.request, self.found = store, embedder, request, found

    def run(self, call: ToolCall) -> ToolOutcome:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return _refused(f"the arguments are not valid JSON ({exc}); send a JSON object")
        if not isinstance(arguments, dict):
            return _refused("the arguments must be a JSON object")
        if call.name == "search":
            return self._search(arguments)
        if call.name == "read":
            return self._read(arguments)
        return _refused(f"there is no tool {call.name!r}; the tools are search and read")

    def _search(self, arguments: dict[str, Any]) -> ToolOutcome:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return _refused("search needs a query: the words to look for")
        k = _integer(arguments.get("k"), SEARCH_K, 1, MAX_SEARCH_K)
        condition = _both(self.request.filter, arguments.get("filter"))
        try:
            hits = search(self.store, self.embedder, self.request.collection, query[:4096], k, filter=condition,
                          mode=self.request.mode).hits  # fmt: skip
        except InvalidInputError as exc:
            return _refused(f"the search was refused: {exc}")
        return self._passages([self.found.add(hit) for hit in hits], "no passage matched; try other words")

    def _read(self, arguments: dict[str, Any]) -> ToolOutcome:
        document_id = arguments.get("document_id")
        if not isinstance(document_id, int) or isinstance(document_id, bool):
            return _refused("read needs a document_id: the integer a search result showed")
        start = _integer(arguments.get("start"), 0, 0, 10**9)
        end = min(_integer(arguments.get("end"), start + READ_CHARS, start + 1, 10**9), start + MAX_READ_CHARS)
        collection = self.store.get_collection(self.request.collection)
        with self.store.session() as session:
            ids = list(session.scalars(
                select(Chunk.id).join(Document)
                .where(Document.id == document_id, Document.collection_id == collection.id)
                .where(Chunk.end_char > start, Chunk.start_char < end).order_by(Chunk.ordinal)
            ))  # fmt: skip
        if not ids:
            return _refused(f"document {document_id} has no text between characters {start} and {end} in this "
                            "collection (use a document_id a search returned)")  # fmt: skip
        hits = hydrate(self.store, [FusedHit(chunk_id, 0.0, None, None) for chunk_id in ids])
        return self._passages([self.found.add(hit) for hit in hits], "nothing to read there")

    @staticmethod
    def _passages(sources: list[AnswerSource], when_none: str) -> ToolOutcome:
        if not sources:
            return ToolOutcome(when_none)
        return ToolOutcome("\n\n".join(source_block(s, with_document=True) for s in sources), sources)


def _refused(reason: str) -> ToolOutcome:
    return ToolOutcome(f"error: {reason}", error=reason)


def _integer(value: Any, default: int, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return max(low, min(high, value))


def _both(required: dict[str, Any] | None, asked: Any) -> dict[str, Any] | None:
    """The request's filter and the model's, both applying (the model cannot widen what the caller allowed)."""
    asked = asked if isinstance(asked, dict) and asked else None
    if required and asked:
        return {"$and": [required, asked]}
    return required or asked
