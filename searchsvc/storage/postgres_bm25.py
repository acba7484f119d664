"""BM25 over PostgreSQL's tsvector data, ranked the way SQLite's FTS5 ``bm25()`` ranks.

PostgreSQL's own ``ts_rank`` ignores how rare a term is across the corpus and how long a chunk is;
on SciFact it ranks far below BM25. FTS5's formula is used instead, with the statistics it uses, kept
in SQL: each chunk's term frequencies (the positions of each lexeme in its ``search_vector``), its
length (``chunks.search_length``, kept by the trigger of migration 0009), and over all chunks their
number, average length and each term's document frequency (counted with the GIN index, cached).

    score(chunk) = sum over query lexemes of idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avglength))
    idf = ln((N - n + 0.5) / (n + 0.5)), at least 1e-6 (as FTS5)
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from sqlalchemy import ColumnElement, Float, String, column, func, literal_column, select, text, true, values
from sqlalchemy.orm import Session

from searchsvc.storage.schema import Chunk, Document

K1, B = 1.2, 0.75  # FTS5's constants
MIN_IDF = 1e-6
STATS_SECONDS = 300.0  # corpus statistics are re-read this often: a new chunk shifts them very little

_cache: dict[tuple[str, str], tuple[float, Any]] = {}
_lock = threading.Lock()


def bm25_search(
    session: Session, collection_id: int, terms: list[str], k: int, condition: ColumnElement[bool] | None
) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the ``k`` best chunks of the collection matching any term, best first."""
    lexemes = _lexemes(session, terms)
    if not lexemes:
        return []
    chunks, average_length = _corpus(session)
    query = func.to_tsquery("simple", " | ".join(f"'{lexeme}'" for lexeme in lexemes))  # normalised: no quotes
    vector = literal_column("chunks.search_vector")
    candidates = (
        select(
            Chunk.id.label("id"),
            vector.label("sv"),
            func.coalesce(literal_column("chunks.search_length"), 0).label("n"),
        )
        .join(Document, Document.id == Chunk.document_id)
        .where(
            vector.op("@@")(query), Chunk.collection_id == collection_id, condition if condition is not None else true()
        )
        .cte("candidates")
    )
    found = func.unnest(candidates.c.sv).table_valued("lexeme", "positions").lateral("found")
    weights = values(column("lexeme", String), column("idf", Float), name="weights").data(
        [(lexeme, _idf(chunks, _document_frequency(session, lexeme))) for lexeme in lexemes]
    )
    tf = func.coalesce(func.array_length(found.c.positions, 1), 1)
    norm = K1 * (1 - B + B * candidates.c.n / max(average_length, 1e-9))
    score = func.sum(weights.c.idf * tf * (K1 + 1) / (tf + norm)).label("score")
    stmt = (
        select(candidates.c.id, score)
        .select_from(candidates.join(found, true()).join(weights, weights.c.lexeme == found.c.lexeme))
        .group_by(candidates.c.id)
        .order_by(score.desc(), candidates.c.id)
        .limit(k)
    )
    return [(int(chunk_id), float(value)) for chunk_id, value in session.execute(stmt)]


def _lexemes(session: Session, terms: list[str]) -> list[str]:
    """The query's words as the index stores them (english stemming; stopwords gone)."""
    rows = session.execute(
        text("SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :words))"), {"words": " ".join(terms)}
    )
    return sorted(row[0] for row in rows)


def _idf(chunks: int, matching: int) -> float:
    return max(math.log((chunks - matching + 0.5) / (matching + 0.5)), MIN_IDF)


def _corpus(session: Session) -> tuple[int, float]:
    """Number of chunks and their average keyword length, over every collection (FTS5's scope too)."""
    return cached(session, "corpus", lambda: tuple(session.execute(
        text("SELECT count(*), coalesce(avg(search_length), 0) FROM chunks")).one()))  # fmt: skip


def _document_frequency(session: Session, lexeme: str) -> int:
    sql = text("SELECT count(*) FROM chunks WHERE search_vector @@ to_tsquery('simple', :q)")
    return cached(session, f"df:{lexeme}", lambda: int(session.execute(sql, {"q": f"'{lexeme}'"}).scalar_one()))


def cached(session: Session, key: str, compute: Any) -> Any:
    """``compute()``, remembered per database for STATS_SECONDS (corpus statistics change slowly)."""
    full = (str(session.get_bind().engine.url), key)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(full)
    if hit is not None and now - hit[0] < STATS_SECONDS:
        return hit[1]
    value = compute()
    with _lock:
        if len(_cache) > 100_000:
            _cache.clear()
        _cache[full] = (now, value)
    return value
