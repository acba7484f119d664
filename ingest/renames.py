"""Files that moved: a new path whose document the collection already holds under a path that is gone.

A file found under a key the collection does not know is first matched by content: a document of the
same source (the folder being ingested) with the same fingerprint (same bytes, same chunking) and the
same format, whose file no longer exists, is the same file, moved or renamed. It keeps its row, chunks
and vectors; only its key, path and title change, so nothing is embedded and no hit is left at the old
path, with or without pruning.

A file that was renamed *and* edited has another fingerprint. Once parsed and chunked, it is matched
to a gone document whose chunks it mostly shares (by the hash of each chunk's embedded text), and
replaces that document: its unchanged chunks come from the embedding cache, so only the chunks whose
text changed are embedded.

A document is never taken by two files: a copy of a moved file is added as a new document. Only
documents of the folder being ingested are looked at (its files are visible here, so "gone" means
gone): a file moved from one ingested folder to another is added, and the old one is removed by --prune.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.document import SourceDocument
from searchsvc.storage.schema import Chunk, Document

COLUMNS = (Document.id, Document.key, Document.source, Document.path, Document.title, Document.content_hash,
           Document.doc_metadata)  # fmt: skip
MIN_SHARED = 0.5  # an edited file is the same document when at least half its chunks (and the old one's) are kept


@dataclass(frozen=True)
class Gone:
    """A document whose file is no longer where it was recorded."""

    row_id: int
    key: str
    path: str
    title: str | None
    content_hash: str
    metadata: dict[str, Any]


class RenameFinder:
    """Pairs newly found files with documents whose files are gone, within one run over one collection."""

    def __init__(self, session: Callable[[], Session], collection_id: int) -> None:
        self._session = session
        self._collection_id = collection_id
        self._claimed: set[int] = set()
        self._gone: dict[str, list[Gone]] = {}  # per source: its gone documents, read once, when needed
        self._chunk_hashes: dict[int, set[str]] = {}

    def same_content(
        self, items: Iterable[SourceDocument], fingerprint: Callable[[SourceDocument], str]
    ) -> dict[str, Gone]:
        """Movable new files (by key) that are a gone document's file under another name."""
        wanted = {fingerprint(item): item for item in items if item.movable}
        if not wanted:
            return {}
        with self._session() as session:
            rows = session.execute(
                select(*COLUMNS).where(
                    Document.collection_id == self._collection_id,
                    Document.content_hash.in_(list(wanted)),
                    Document.path.is_not(None),
                )
            ).all()
        found: dict[str, Gone] = {}
        for row in sorted(rows, key=lambda r: r.id):
            item = wanted.get(row.content_hash)
            if item is None or item.key in found or row.id in self._claimed or row.source != item.source:
                continue
            if _exists(row.path):
                continue
            if (row.doc_metadata or {}).get("format") != item.metadata.get("format"):
                continue
            found[item.key] = _gone(row)
            self._claimed.add(row.id)
        return found

    def most_alike(self, item: SourceDocument, chunk_hashes: list[str], seen: set[str]) -> Gone | None:
        """The gone document an edited, renamed file most resembles, if it shares enough of its chunks."""
        if not item.movable or not chunk_hashes:
            return None
        mine = set(chunk_hashes)
        best, best_share = None, MIN_SHARED
        for gone in self._gone_documents(item.source):
            if gone.row_id in self._claimed or gone.key in seen:
                continue
            if gone.metadata.get("format") != item.metadata.get("format"):
                continue
            theirs = self._chunk_hashes.get(gone.row_id, set())
            share = len(mine & theirs) / max(len(mine), len(theirs), 1)
            if share >= best_share:
                best, best_share = gone, share
        if best is not None:
            self._claimed.add(best.row_id)
        return best

    def _gone_documents(self, source: str) -> list[Gone]:
        if source not in self._gone:
            with self._session() as session:
                rows = session.execute(
                    select(*COLUMNS)
                    .where(Document.collection_id == self._collection_id, Document.source == source)
                    .where(Document.path.is_not(None))
                    .order_by(Document.id)
                ).all()
                gone = [_gone(r) for r in rows]
                gone = [g for g in gone if not _exists(g.path)]
                self._chunk_hashes.update(_chunk_hashes(session, [g.row_id for g in gone]))
            self._gone[source] = gone
        return self._gone[source]


def _chunk_hashes(session: Session, document_ids: list[int]) -> dict[int, set[str]]:
    hashes: dict[int, set[str]] = {}
    for start in range(0, len(document_ids), 5000):
        batch = document_ids[start : start + 5000]
        for document_id, embed_hash in session.execute(
            select(Chunk.document_id, Chunk.embed_hash).where(Chunk.document_id.in_(batch))
        ):
            hashes.setdefault(document_id, set()).add(embed_hash)
    return hashes


def _gone(row: Any) -> Gone:
    return Gone(row.id, row.key, row.path, row.title, row.content_hash, dict(row.doc_metadata or {}))


def _exists(path: str) -> bool:
    return os.path.lexists(path)
