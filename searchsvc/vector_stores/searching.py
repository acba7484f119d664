"""``POST /v1/vector_stores/{id}/search``: OpenAI's filters and scores over searchsvc's hybrid search.

Filters: OpenAI's comparison filters ``{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key", "value"}``
and compound filters ``{"type": "and"|"or", "filters": [...]}`` become searchsvc's filter language over
document metadata (where a file's attributes are kept). Scores are 0..1: the hybrid ranking's reciprocal
rank fusion score divided by the best it can be (first in both rankings), so 1.0 is "ranked first by
meaning and by words", and ``score_threshold`` cuts on that scale.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from searchsvc.errors import InvalidInputError, ProviderError
from searchsvc.fusion import KEYWORD_WEIGHT, RRF_K, VECTOR_WEIGHT
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.search import SearchHit, search
from searchsvc.store import Store

log = logging.getLogger("searchsvc.vector_stores")
REWRITE_FOR_SEARCH = (
    "Rewrite the user's request as one short search query for a document search engine: keep the names, "
    "terms and numbers that matter, drop filler words and politeness. Reply with the query only."
)
REWRITE_DEADLINE_SECONDS = 10.0
BEST_FUSED_SCORE = (VECTOR_WEIGHT + KEYWORD_WEIGHT) / (RRF_K + 1)
COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
FILE_FIELDS = ("file_id", "filename", "format")  # metadata every uploaded file's documents carry


def translate_filter(spec: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """An OpenAI filter as a searchsvc filter (InvalidInputError naming what is wrong)."""
    kind = spec.get("type")
    if kind in ("and", "or"):
        filters = spec.get("filters")
        if not isinstance(filters, list) or not filters:
            raise InvalidInputError(f'a compound filter of type "{kind}" needs a non-empty "filters" list')
        return {f"${kind}": [translate_filter(_object(item), depth + 1) for item in filters]}
    if kind not in COMPARISONS:
        raise InvalidInputError(f"unknown filter type {kind!r}: use eq, ne, gt, gte, lt, lte, in, nin, and or or")
    key = spec.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f'a comparison filter of type "{kind}" needs a "key" (an attribute name)')
    if "value" not in spec:
        raise InvalidInputError(f'a comparison filter of type "{kind}" needs a "value"')
    return {f"metadata.{key}": {f"${kind}": spec["value"]}}


def _object(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInputError("each filter must be a JSON object with a type")
    return item


def normalised(hit: SearchHit) -> float:
    return round(min(1.0, hit.score / BEST_FUSED_SCORE), 6)


def search_store(
    store: Store,
    embedder: EmbeddingProvider,
    collection: str,
    queries: list[str],
    filters: dict[str, Any] | None,
    max_results: int,
    score_threshold: float,
) -> list[tuple[SearchHit, float]]:
    """The best ``max_results`` chunks over every query (a chunk found by several keeps its best score)."""
    condition = translate_filter(filters) if filters else None
    best: dict[int, tuple[SearchHit, float]] = {}
    for query in queries:
        for hit in search(store, embedder, collection, query, max_results, filter=condition, mode="hybrid").hits:
            score = normalised(hit)
            if score >= score_threshold and score > best.get(hit.chunk_id, (hit, -1.0))[1]:
                best[hit.chunk_id] = (hit, score)
    return sorted(best.values(), key=lambda pair: -pair[1])[:max_results]


def file_of(hit: SearchHit) -> tuple[str, str]:
    """The uploaded file a hit came from, as (file id, file name); a document that came from no uploaded file
    (ingested by the CLI or an upsert) is named by its key and path."""
    return str(hit.metadata.get("file_id") or hit.document_key), str(
        hit.metadata.get("filename") or hit.path or hit.document_key
    )


def result_json(hit: SearchHit, score: float, attributes: dict[str, Any] | None) -> dict[str, Any]:
    """One result in OpenAI's shape; a document that came from no uploaded file (ingested by the CLI or an
    upsert) is named by its key and path."""
    metadata = hit.metadata
    file_id, filename = file_of(hit)
    if attributes is None:
        attributes = {k: v for k, v in metadata.items() if k not in FILE_FIELDS and isinstance(v, str | int | float)}
    return {
        "file_id": file_id,
        "filename": filename,
        "score": score,
        "attributes": attributes,
        "content": [{"type": "text", "text": hit.text}],
    }


def rewritten_queries(chat: ChatProvider | None, queries: list[str]) -> list[str]:
    """``rewrite_query``: each query as the chat model would search for it, all within one deadline. Without
    a chat API, when it fails, or once the deadline has passed, queries are searched as given (``search_query``
    in the answer says which)."""
    if chat is None:
        return queries
    ends_at = time.monotonic() + REWRITE_DEADLINE_SECONDS
    found = []
    for query in queries:
        messages = [{"role": "system", "content": REWRITE_FOR_SEARCH}, {"role": "user", "content": query}]
        text, remaining = "", ends_at - time.monotonic()
        try:
            if remaining > 0.5:
                reply = chat.complete(messages, params={"temperature": 0}, deadline=remaining, purpose="rewrite")
                text = reply.text.strip()
        except ProviderError as exc:
            log.warning("rewrite_query: the chat API failed (%s); searching the query as given", exc)
            ends_at = 0.0  # it is failing: the other queries are searched as given, at once
        found.append(" ".join(text.split())[:1000] or query)
    return found
