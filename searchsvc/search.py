"""Query path: embed, retrieve (vector, keyword or both fused), filter inside retrieval, hydrate in one query."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from searchsvc.errors import InvalidInputError
from searchsvc.filters import compile_filter
from searchsvc.fusion import FusedHit, reciprocal_rank_fusion
from searchsvc.locations import describe_location
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.usage import CURRENT_COLLECTION
from searchsvc.storage import repository as repo
from searchsvc.storage.keyword_index import keyword_search
from searchsvc.storage.schema import Collection
from searchsvc.store import Store
from searchsvc.textclean import clean_text

MAX_K = 1000
MAX_QUERY_CHARS = 4096
MIN_SCORE_HELP = (
    "in vector and hybrid modes min_score is a floor on cosine similarity (-1 to 1; 0.2-0.4 is typical "
    "for a relevant chunk with MiniLM); in keyword mode it is a floor on the keyword score, 0 or more "
    "(BM25 on SQLite and PostgreSQL alike, typically 5-20 for a good match)"
)
MODES = ("vector", "keyword", "hybrid")
GROUP_FETCH_FACTOR = 5  # chunks fetched per wanted document when grouping
GROUP_DEEPEN_FACTOR = 4  # and, when that gives fewer than k documents, how much deeper the next look goes
GROUP_MAX_DEPTH = 10_000  # chunks looked at, at most, to find k documents
HYBRID_DEPTH = 100  # candidates taken from each side before fusing
_KEYWORD_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyword-search")
HYDRATE_MARGIN = 10  # extra ranked ids hydrated in case some were deleted since the index was saved


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
    vector_score: float | None = None
    keyword_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "location": self.location()}

    def location(self, separator: str = " | ") -> str:
        """Where the hit is, for a person: path, heading path, then lines, page or characters."""
        return describe_location(
            self.path or self.document_key,
            self.heading_path,
            self.page,
            self.line_start,
            self.line_end,
            self.start_char,
            self.end_char,
            separator=separator,
        )


@dataclass
class SearchResult:
    collection: str
    query: str
    mode: str
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
    mode: str = "hybrid",
) -> SearchResult:
    """The ``k`` best chunks for ``query``, best first.

    ``mode`` is ``vector`` (cosine similarity), ``keyword`` (BM25) or ``hybrid``
    (both, fused by reciprocal rank). ``filter`` (see ``searchsvc.filters``) is applied inside
    both retrievals, so ``k`` results come back whenever ``k`` matching chunks exist.
    ``min_score`` is a floor on cosine similarity (on the keyword score in keyword mode).
    With ``group_by="document"`` the best chunk of each of the ``k`` best documents comes back.
    """
    query = clean_text(query)
    _validate(query, k, group_by, mode)
    check_min_score(min_score, mode)
    condition = compile_filter(filter)
    collection = store.collection_for(collection_name, provider)  # never another model's vectors
    allowed = _allowed_ids(store, collection, condition) if filter and mode != "keyword" else None
    retrieval = _Retrieval(store, provider, collection, query, mode, condition if filter else None, allowed)
    depth = k if group_by is None else k * GROUP_FETCH_FACTOR
    while True:
        ranked, exhausted = retrieval.ranked(depth)
        started = time.perf_counter()
        candidates = hydrate(store, ranked[: depth + HYDRATE_MARGIN])
        hits = _apply_floor(candidates, min_score, mode)
        retrieval.timings["hydrate_ms"] = _ms_since(started)
        if group_by != "document":
            hits = hits[:k]
            break
        # A few long documents can fill every candidate: look deeper until k documents, no more chunks,
        # the depth limit, or (vector and keyword rankings follow the score) a floor that cut the list.
        hits = best_chunk_per_document(hits)
        floored = mode != "hybrid" and len(hits) < len(best_chunk_per_document(candidates))
        if len(hits) >= k or exhausted or floored or depth >= GROUP_MAX_DEPTH:
            hits = hits[:k]
            break
        depth = min(depth * GROUP_DEEPEN_FACTOR, GROUP_MAX_DEPTH)
    return SearchResult(collection_name, query, mode, hits, retrieval.timings)


class _Retrieval:
    """The candidates of one query at a given depth; the query is embedded once however deep it goes."""

    def __init__(
        self,
        store: Store,
        provider: EmbeddingProvider,
        collection: Collection,
        query: str,
        mode: str,
        condition: Any,
        allowed: np.ndarray | None,
    ) -> None:
        self.store, self.provider, self.collection = store, provider, collection
        self.query, self.mode, self.condition, self.allowed = query, mode, condition, allowed
        self.query_vector: np.ndarray | None = None
        self.timings: dict[str, float] = {}

    def ranked(self, depth: int) -> tuple[list[FusedHit], bool]:
        """Fused candidates, best first, and whether they are all there is."""
        side_depth = max(depth, HYBRID_DEPTH) if self.mode == "hybrid" else depth
        # The keyword query runs on a second core while the query is embedded.
        pending = (
            _KEYWORD_POOL.submit(_timed_keyword, self.store, self.collection, self.query, side_depth, self.condition)
            if self.mode != "vector"
            else None
        )
        vector: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        if self.mode != "keyword":
            if self.query_vector is None:
                started = time.perf_counter()
                for_ledger = CURRENT_COLLECTION.set(self.collection.name)  # a paid query is recorded under it
                try:
                    self.query_vector = self.provider.embed_query(self.query)
                finally:
                    CURRENT_COLLECTION.reset(for_ledger)
                self.timings["embed_ms"] = _ms_since(started)
            started = time.perf_counter()
            vector = _vector_ranking(self.store, self.collection, self.query_vector, side_depth, self.allowed)
            self.timings["vector_ms"] = _ms_since(started)
        if pending is not None:
            keyword, self.timings["keyword_ms"] = pending.result()
        exhausted = len(vector) < side_depth and len(keyword) < side_depth
        ranked = _combine(self.mode, vector, keyword)
        if self.mode == "hybrid" and self.query_vector is not None:
            ranked = _with_missing_cosines(
                self.store, self.collection, self.query_vector, ranked[: depth + HYDRATE_MARGIN]
            )
        return ranked, exhausted


def check_min_score(min_score: float | None, mode: str) -> None:
    """A floor must fit the scale of the score it applies to (see MIN_SCORE_HELP)."""
    if min_score is None:
        return
    if mode == "keyword" and min_score < 0:
        raise InvalidInputError(f"min_score {min_score} is below 0: {MIN_SCORE_HELP}")
    if mode != "keyword" and not -1 <= min_score <= 1:
        raise InvalidInputError(f"min_score {min_score} is outside -1..1 for mode {mode!r}: {MIN_SCORE_HELP}")


def _validate(query: str, k: int, group_by: str | None, mode: str) -> None:
    if not query.strip():
        raise InvalidInputError("the query is empty; pass some text to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError(f"the query has {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are allowed")
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k must be between 1 and {MAX_K}, got {k}")
    if group_by not in (None, "document"):
        raise InvalidInputError(f"group_by must be 'document' or absent, got {group_by!r}")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _timed_keyword(
    store: Store, collection: Collection, query: str, depth: int, condition: Any
) -> tuple[list[tuple[int, float]], float]:
    started = time.perf_counter()
    with store.session() as session:
        found = keyword_search(session, collection.id, query, depth, condition, store.settings.keyword_postings_budget)
    return found, _ms_since(started)


def _allowed_ids(store: Store, collection: Collection, condition: Any) -> np.ndarray:
    with store.session() as session:
        return repo.filtered_chunk_ids(session, collection.id, condition)


def _vector_ranking(
    store: Store, collection: Collection, query_vector: np.ndarray, depth: int, allowed: np.ndarray | None
) -> list[tuple[int, float]]:
    index = store.index(collection)
    # No count of the index here: a backend pads short results with -1, and counting a pgvector table
    # is a scan (at 100k vectors it cost more than the search itself).
    depth = depth if allowed is None else min(depth, len(allowed))
    if depth <= 0:
        return []
    scores, ids = index.search(query_vector[None, :], depth, allowed)
    return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]


def _combine(mode: str, vector: list[tuple[int, float]], keyword: list[tuple[int, float]]) -> list[FusedHit]:
    if mode == "vector":
        return [FusedHit(cid, score, score, None) for cid, score in vector]
    if mode == "keyword":
        return [FusedHit(cid, score, None, score) for cid, score in keyword]
    return reciprocal_rank_fusion(vector, keyword)


def _with_missing_cosines(
    store: Store, collection: Collection, query_vector: np.ndarray, ranked: list[FusedHit]
) -> list[FusedHit]:
    """Keyword-only hits get their cosine similarity too, so a relevance floor means the same everywhere."""
    missing = [hit.chunk_id for hit in ranked if hit.vector_score is None]
    if not missing:
        return ranked
    cosines = store.index(collection).cosines(query_vector, missing)
    return [
        hit
        if hit.vector_score is not None
        else FusedHit(hit.chunk_id, hit.score, cosines.get(hit.chunk_id), hit.keyword_score)
        for hit in ranked
    ]


def _apply_floor(hits: list[SearchHit], min_score: float | None, mode: str) -> list[SearchHit]:
    if min_score is None:
        return hits
    if mode == "keyword":
        return [hit for hit in hits if (hit.keyword_score or 0.0) >= min_score]
    return [hit for hit in hits if hit.vector_score is not None and hit.vector_score >= min_score]


def best_chunk_per_document(hits: list[SearchHit]) -> list[SearchHit]:
    """Keep the first (best) hit of each document, preserving rank order."""
    seen: set[int] = set()
    kept = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            kept.append(hit)
    return kept


def hydrate(store: Store, ranked: list[FusedHit]) -> list[SearchHit]:
    """Chunk and document fields for ranked hits, in rank order; ids gone from SQL are dropped."""
    with store.session() as session:
        rows = repo.chunks_with_documents(session, [hit.chunk_id for hit in ranked])
    hits = []
    for fused in ranked:
        if fused.chunk_id not in rows:
            continue
        chunk, doc = rows[fused.chunk_id]
        hits.append(
            SearchHit(
                chunk_id=chunk.id,
                score=round(float(fused.score), 6),
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
                vector_score=None if fused.vector_score is None else round(fused.vector_score, 6),
                keyword_score=None if fused.keyword_score is None else round(fused.keyword_score, 6),
            )
        )
    return hits


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
