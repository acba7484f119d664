"""Keyword (full-text) retrieval in SQL, ranked by BM25: SQLite FTS5, or PostgreSQL tsvector (postgres_bm25).

The index itself is kept in step with ``chunks`` by database triggers (migration 0003), so every
insert, update and delete of a chunk updates it in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, column, func, literal_column, select, table, text, true
from sqlalchemy.orm import Session

from searchsvc.storage.postgres_bm25 import bm25_search, cached
from searchsvc.storage.schema import Chunk, Document

TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 64
PREFETCH_FACTOR, PREFETCH_MIN = 4, 200  # FTS5 candidates ranked before the collection is applied
# Weights of the title/heading column and the body column in FTS5's bm25().
HEADER_WEIGHT, BODY_WEIGHT = 1.0, 1.0
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)

# Ranking cost grows with the postings of the query's terms (~0.7 us each in FTS5): a 10-term query
# over a million chunks scores most of them (325 ms). Past this many postings the most common terms
# (lowest idf, least weight in bm25) are dropped, the rarest kept. On SciFact (10k chunks) no query
# reaches it (the largest needs 21k postings), so its rankings are exactly those of the full query.
DEFAULT_POSTINGS_BUDGET = 30_000

fts = table("chunks_fts", column("rowid"), column("header"), column("body"))


def query_terms(query: str) -> list[str]:
    """Lower-cased word tokens of a query, stopwords dropped (unless nothing else is left)."""
    words = [w.lower() for w in TOKEN.findall(query)]
    content = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(content or words))[:MAX_TERMS]


def keyword_search(
    session: Session,
    collection_id: int,
    query: str,
    k: int,
    condition: ColumnElement[bool] | None = None,
    postings_budget: int = DEFAULT_POSTINGS_BUDGET,
) -> list[tuple[int, float]]:
    """(chunk id, score) for the ``k`` best keyword matches, best first; higher scores are better."""
    terms = query_terms(query)
    if not terms or k <= 0:
        return []
    terms = affordable_terms(session, terms, postings_budget)
    if session.get_bind().dialect.name == "postgresql":
        return bm25_search(session, collection_id, terms, k, condition)
    return _sqlite(session, collection_id, terms, k, condition)


def affordable_terms(session: Session, terms: list[str], budget: int) -> list[str]:
    """``terms`` without the most common ones while their postings together exceed ``budget``."""
    if len(terms) <= 1:
        return terms
    frequency = {term: _document_frequency(session, term, budget + 1) for term in terms}
    kept = sorted(terms, key=lambda term: frequency[term])
    while len(kept) > 1 and sum(frequency[term] for term in kept) > budget:
        kept.pop()
    return [term for term in terms if term in kept]


def _document_frequency(session: Session, term: str, cap: int) -> int:
    """How many chunks hold ``term`` (counted up to ``cap``), cached per database for a few minutes."""

    def count() -> int:
        if session.get_bind().dialect.name != "postgresql":
            return _fts_matches(session, f'"{term}"', cap)
        vector = literal_column("chunks.search_vector")
        matching: Any = (
            select(literal_column("1")).select_from(Chunk).where(vector.op("@@")(func.plainto_tsquery("english", term)))
        )
        return int(session.execute(select(func.count()).select_from(matching.limit(cap).subquery())).scalar_one())

    return int(cached(session, f"capped-df:{cap}:{term}", count))


def _sqlite(
    session: Session, collection_id: int, terms: list[str], k: int, condition: ColumnElement[bool] | None
) -> list[tuple[int, float]]:
    match = " OR ".join(f'"{term}"' for term in terms)  # quoted: FTS5 syntax in a query is only text
    if condition is None:
        # Fast path: rank in FTS5 alone, then keep this collection's chunks. Joining first costs two
        # B-tree lookups per matching row; ranking first costs them only for the best candidates.
        candidates = max(PREFETCH_FACTOR * k, PREFETCH_MIN)
        rows = _sqlite_query(session, match, collection_id, k, None, candidates)
        if len(rows) == k or _fts_matches(session, match, candidates) < candidates:
            return rows
    return _sqlite_query(session, match, collection_id, k, condition, None)


def _sqlite_query(
    session: Session,
    match: str,
    collection_id: int,
    k: int,
    condition: ColumnElement[bool] | None,
    prefetch: int | None,
) -> list[tuple[int, float]]:
    score = literal_column(f"bm25(chunks_fts, {HEADER_WEIGHT}, {BODY_WEIGHT})")
    ranked = select(fts.c.rowid.label("id"), score.label("score")).where(text("chunks_fts MATCH :match"))
    if prefetch is not None:
        ranked = ranked.order_by(score, fts.c.rowid).limit(prefetch)
    best = ranked.subquery()
    stmt = (
        select(best.c.id, best.c.score)
        .join(Chunk, Chunk.id == best.c.id)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == collection_id, _or_true(condition))
        .order_by(best.c.score, best.c.id)
        .limit(k)
    )
    # bm25() is lower-is-better; negate so every retriever returns higher-is-better scores.
    return [(int(chunk_id), -float(value)) for chunk_id, value in session.execute(stmt, {"match": match})]


def _fts_matches(session: Session, match: str, cap: int) -> int:
    """How many chunks match, counting no further than ``cap``."""
    capped = select(fts.c.rowid).where(text("chunks_fts MATCH :match")).limit(cap).subquery()
    return int(session.execute(select(func.count()).select_from(capped), {"match": match}).scalar_one())


def _or_true(condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
    return condition if condition is not None else true()
