"""The shelf of query vectors in SQL (table ``query_embeddings``): read at once, written in the background.

A search never waits for a write (SQLite has one writer, which may be an ingestion's): vectors to keep
are queued and one thread inserts them in batches, then trims the table to its newest ``max_rows``.
A failure to read or write is logged and treated as a miss; a cache never fails a search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from searchsvc.storage.background import BackgroundWriter
from searchsvc.storage.repository import dialect_insert
from searchsvc.storage.schema import QueryEmbedding, utcnow

log = logging.getLogger(__name__)

TRIM_EVERY = 500  # inserts between two trims


class SqlQueryShelf:
    """Query vectors kept in SQL for every process on the database (a ``VectorShelf``)."""

    def __init__(self, session: Callable[[], Session], max_rows: int, trim_every: int = TRIM_EVERY) -> None:
        self._session, self.max_rows, self.trim_every = session, max_rows, trim_every
        self._writer: BackgroundWriter[tuple[str, str, bytes]] = BackgroundWriter(self._write, "query-shelf")
        self._since_trim = 0

    def get(self, model: str, text_hash: str) -> np.ndarray | None:
        try:
            with self._session() as session:
                row = session.get(QueryEmbedding, (model, text_hash))
                return None if row is None else np.frombuffer(row.vector, dtype=np.float32).copy()
        except SQLAlchemyError as exc:
            log.warning("query vector shelf unreadable, embedding the query: %s", exc)
            return None

    def put(self, model: str, text_hash: str, vector: np.ndarray) -> None:
        self._writer.put((model, text_hash, np.asarray(vector, dtype=np.float32).tobytes()))

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._writer.close()

    def _write(self, batch: list[tuple[str, str, bytes]]) -> None:
        rows = {(m, h): {"model": m, "text_hash": h, "vector": v, "created_at": utcnow()} for m, h, v in batch}
        with self._session() as session:
            session.execute(
                dialect_insert(session)(QueryEmbedding).values(list(rows.values())).on_conflict_do_nothing()
            )
            self._since_trim += len(rows)
            if self._since_trim >= self.trim_every:
                self._since_trim = 0
                _trim(session, self.max_rows)
            session.commit()


def _trim(session: Session, max_rows: int) -> None:
    """Keep the newest ``max_rows`` vectors."""
    cutoff = session.scalar(
        select(QueryEmbedding.created_at).order_by(QueryEmbedding.created_at.desc()).offset(max_rows).limit(1)
    )
    if cutoff is not None:
        session.execute(delete(QueryEmbedding).where(QueryEmbedding.created_at <= cutoff))
