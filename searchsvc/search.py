"""Query path: embed the query, retrieve neighbours, hydrate them from SQL in one query."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from searchsvc.errors import InvalidInputError
from searchsvc.filters import compile_filter
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage import repository as repo
from searchsvc.store import Store, check_model

MAX_K = 1000
GROUP_FETCH_FACTOR = 5  # chunks fetched per wanted document when grouping


@dataclass
class SearchHit:
    chunk_id: int
    score: float
    document_id: int
    document_key: str
    path: str | None
    title: str | None
    heading_path: list[str]
    start_char: int
    end_char: int
    line_start: int | None
    line_end: int | None
    page: int | None
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    collection: str
    query: str
    hits: list[SearchHit]
    timings_ms: dict[str, float]


def search(
    store: Store,
    provider: EmbeddingProvider,
    collection_name: str,
    query: str,
    k: int = 10,
    group_by: str | None = None,
    filter: dict[str, Any] | None = None,
    min_score: float | None = None,
) -> SearchResult:
    """The ``k`` chunks nearest to ``query`` by cosine similarity, best first.

    ``filter`` (see ``searchsvc.filters``) is applied inside retrieval, so ``k`` results
    come back whenever ``k`` matching chunks exist. With ``group_by="document"`` the ``k``
    best documents come back instead, each represented by its best chunk.
    """
    _validate(query, k, group_by)
    condition = compile_filter(filter)
    collection = store.get_collection(collection_name)
    check_model(collection, provider)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    vector = provider.embed_query(query)
    timings["embed_ms"] = _ms_since(started)
    started = time.perf_counter()
    index = store.index(collection)
    allowed = None
    if filter:
        with store.session() as session:
            allowed = repo.filtered_chunk_ids(session, collection.id, condition)
    fetch = k if group_by is None else k * GROUP_FETCH_FACTOR
    fetch = min(fetch, index.count() if allowed is None else len(allowed))
    scores, ids = index.search(vector[None, :], fetch, allowed) if fetch > 0 else ([[]], [[]])
    timings["retrieve_ms"] = _ms_since(started)
    started = time.perf_counter()
    hits = hydrate(store, list(scores[0]), list(ids[0]))
    if min_score is not None:
        hits = [hit for hit in hits if hit.score >= min_score]
    hits = best_chunk_per_document(hits)[:k] if group_by == "document" else hits[:k]
    timings["hydrate_ms"] = _ms_since(started)
    return SearchResult(collection_name, query, hits, timings)


def _validate(query: str, k: int, group_by: str | None) -> None:
    if not query.strip():
        raise InvalidInputError("the query is empty; pass some text to search for")
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}, got {k}")
    if group_by not in (None, "document"):
        raise InvalidInputError(f"group_by must be 'document' or absent, got {group_by!r}")


def best_chunk_per_document(hits: list[SearchHit]) -> list[SearchHit]:
    """Keep the first (best) hit of each document, preserving rank order."""
    seen: set[int] = set()
    kept = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            kept.append(hit)
    return kept


def hydrate(store: Store, scores: list[float], ids: list[int]) -> list[SearchHit]:
    """Chunk and document fields for ranked ids, in rank order; ids gone from SQL are dropped."""
    ranked = [(float(score), int(chunk_id)) for score, chunk_id in zip(scores, ids, strict=True) if chunk_id >= 0]
    with store.session() as session:
        rows = repo.chunks_with_documents(session, [chunk_id for _, chunk_id in ranked])
    hits = []
    for score, chunk_id in ranked:
        if chunk_id not in rows:
            continue
        chunk, doc = rows[chunk_id]
        hits.append(
            SearchHit(
                chunk_id=chunk.id,
                score=round(float(score), 6),
                document_id=doc.id,
                document_key=doc.key,
                path=doc.path,
                title=doc.title,
                heading_path=list(chunk.heading_path or []),
                start_char=chunk.start_char,
                end_char=chunk.end_char,
                line_start=chunk.line_start,
                line_end=chunk.line_end,
                page=chunk.page,
                text=chunk.text,
                metadata={**(doc.doc_metadata or {}), **(chunk.chunk_metadata or {})},
            )
        )
    return hits


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
