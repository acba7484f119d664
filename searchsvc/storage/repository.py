"""SQL reads and writes, one function per question; every statement uses bound parameters."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from searchsvc.providers.prompts import collection_vectors_key
from searchsvc.storage.schema import (
    Chunk,
    Collection,
    Document,
    Embedding,
    IngestSource,
    SkippedDocument,
    utcnow,
)

ID_BATCH = 5000  # keeps IN (...) lists under every database's parameter limit


@dataclass
class NewChunk:
    """A chunk ready to store: its text, place in the document, and embedded-text hash."""

    ordinal: int
    text: str
    embed_hash: str
    token_count: int
    start_char: int
    end_char: int
    line_start: int | None = None
    line_end: int | None = None
    page: int | None = None
    heading_path: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class NewDocument:
    key: str
    source: str
    path: str | None
    title: str | None
    content_hash: str
    metadata: dict[str, Any]
    chunks: list[NewChunk]


def get_collection(session: Session, name: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.name == name))


def list_collections(session: Session) -> list[tuple[Collection, int, int]]:
    """Every collection with its document and chunk counts."""
    docs = select(func.count(Document.id)).where(Document.collection_id == Collection.id).scalar_subquery()
    chunks = select(func.count(Chunk.id)).where(Chunk.collection_id == Collection.id).scalar_subquery()
    rows = session.execute(select(Collection, docs, chunks).order_by(Collection.name))
    return [(c, int(d), int(n)) for c, d, n in rows]


@dataclass(frozen=True)
class Known:
    """What a collection already holds under a key: a document, or a record of a file that yielded nothing."""

    row_id: int
    content_hash: str
    source: str
    skipped: bool = False


def known_documents(
    session: Session, collection_id: int, keys: Sequence[str] | None = None, source: str | None = None
) -> dict[str, Known]:
    """key -> Known for these keys, or for every key of ``source`` (documents and skipped files alike)."""
    found: dict[str, Known] = {}
    for table, skipped in ((SkippedDocument, True), (Document, False)):
        stmt: Any = select(table.key, table.id, table.content_hash, table.source).where(
            table.collection_id == collection_id
        )
        if source is not None:
            stmt = stmt.where(table.source == source)
        for batch in [None] if keys is None else _batches(list(keys)):
            rows = session.execute(stmt if batch is None else stmt.where(table.key.in_(batch)))
            found.update({key: Known(row_id, digest, src, skipped) for key, row_id, digest, src in rows})
    return found


def record_skip(
    session: Session, collection_id: int, key: str, source: str, path: str | None, content_hash: str, reason: str
) -> None:
    """Remember that this version of a file yields nothing to index, and why."""
    row = session.scalar(
        select(SkippedDocument).where(SkippedDocument.collection_id == collection_id, SkippedDocument.key == key)
    )
    if row is None:
        row = SkippedDocument(collection_id=collection_id, key=key)
        session.add(row)
    row.source, row.path, row.content_hash, row.reason, row.updated_at = source, path, content_hash, reason, utcnow()


def forget_skips(session: Session, collection_id: int, keys: Sequence[str]) -> None:
    mine = SkippedDocument.collection_id == collection_id
    for batch in _batches(list(keys)):
        session.execute(delete(SkippedDocument).where(mine, SkippedDocument.key.in_(batch)))


def delete_skips(session: Session, ids: Sequence[int]) -> None:
    for batch in _batches(list(ids)):
        session.execute(delete(SkippedDocument).where(SkippedDocument.id.in_(batch)))


def source_label(session: Session, collection_id: int, location: str, parts: Sequence[str]) -> str:
    """The label of the source at ``location`` (a resolved path), registered on first use.

    A new source takes the shortest tail of ``parts`` (its path's components) that no other source of
    the collection has and that neither extends nor is extended by another's (``a`` and ``a/b`` would
    share keys ``a/b/...``): ``docs``, else ``b/docs``..., else ``docs~2``. The caller commits.
    """
    digest = _location_hash(location)
    mine = select(IngestSource.label).where(
        IngestSource.collection_id == collection_id, IngestSource.location_hash == digest
    )
    found = session.scalar(mine)
    if found is not None:
        return found
    taken = set(session.scalars(select(IngestSource.label).where(IngestSource.collection_id == collection_id)))

    def free(label: str) -> bool:
        return bool(label) and not any(
            label == other or other.startswith(label + "/") or label.startswith(other + "/") for other in taken
        )

    tails = ["/".join(parts[-n:]) for n in range(1, len(parts) + 1)]
    label = next((tail for tail in tails if free(tail)), None)
    base, number = (parts[-1] if parts else "source"), 2
    while label is None:
        label = f"{base}~{number}" if free(f"{base}~{number}") else None
        number += 1
    session.add(IngestSource(collection_id=collection_id, label=label, location=location, location_hash=digest))
    session.flush()
    return label


def registered_source(session: Session, collection_id: int, locations: Sequence[str]) -> tuple[str, str] | None:
    """(location, label) of the first of ``locations`` that is a registered source of the collection."""
    by_hash = {_location_hash(location): location for location in locations}
    rows = dict(
        session.execute(
            select(IngestSource.location_hash, IngestSource.label).where(
                IngestSource.collection_id == collection_id, IngestSource.location_hash.in_(list(by_hash))
            )
        ).all()
    )
    return next(((by_hash[h], rows[h]) for h in by_hash if h in rows), None)


def _location_hash(location: str) -> str:
    return hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest()


def cached_hashes(session: Session, model: str, hashes: Iterable[str]) -> set[str]:
    """Which of these embedded-text hashes already have a vector for ``model``."""
    found: set[str] = set()
    for batch in _batches(list(set(hashes))):
        found.update(
            session.scalars(select(Embedding.text_hash).where(Embedding.model == model, Embedding.text_hash.in_(batch)))
        )
    return found


def collection_vector_dimension(session: Session, collection: Collection) -> int | None:
    """The dimension of any stored vector of the collection's chunks (None when none has one)."""
    return session.scalar(
        select(Embedding.dimension)
        .join(Chunk, Chunk.embed_hash == Embedding.text_hash)
        .where(Chunk.collection_id == collection.id, Embedding.model == collection_vectors_key(collection))
        .limit(1)
    )


def dialect_insert(session: Session) -> Any:
    """The INSERT of the session's database, which has ``on_conflict_do_nothing`` (PostgreSQL or SQLite)."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def store_embeddings(session: Session, model: str, vectors: dict[str, np.ndarray]) -> None:
    """Insert vectors for hashes not yet stored; a concurrent writer (another worker embedding the same
    text) may store one first: its row is kept (the same text gives the same vector)."""
    present = cached_hashes(session, model, vectors)
    rows = [{"model": model, "text_hash": text_hash, "dimension": int(vector.shape[0]),
             "vector": np.asarray(vector, dtype=np.float32).tobytes()}
            for text_hash, vector in sorted(vectors.items()) if text_hash not in present]  # fmt: skip
    # Sorted: two workers inserting overlapping texts lock rows in the same order, so they cannot deadlock.
    if not rows:
        return
    insert = dialect_insert(session)
    for start in range(0, len(rows), 1000):  # within every driver's limit of parameters per statement
        session.execute(insert(Embedding).values(rows[start : start + 1000]).on_conflict_do_nothing())


def write_document(
    session: Session, collection_id: int, doc: NewDocument, replaces: int | None = None
) -> tuple[list[int], list[int]]:
    """Insert or replace a document and its chunks; returns (new chunk ids, removed chunk ids). ``replaces``:
    the row of the document this one was under another key (a renamed file), taken over with its new key."""
    if replaces is not None:
        existing = session.get(Document, replaces)
        if existing is not None:
            existing.key = doc.key
    else:
        existing = session.scalar(
            select(Document).where(Document.collection_id == collection_id, Document.key == doc.key)
        )
    removed: list[int] = []
    if existing is None:
        existing = Document(collection_id=collection_id, key=doc.key)
        session.add(existing)
    else:
        removed = list(session.scalars(select(Chunk.id).where(Chunk.document_id == existing.id)))
        session.execute(delete(Chunk).where(Chunk.document_id == existing.id))
    existing.source, existing.path, existing.title = doc.source, doc.path, doc.title
    existing.content_hash, existing.doc_metadata = doc.content_hash, doc.metadata
    existing.chunk_count = len(doc.chunks)
    existing.token_count = sum(c.token_count for c in doc.chunks)
    existing.updated_at = utcnow()
    session.flush()
    rows = [_chunk_row(existing.id, collection_id, c) for c in doc.chunks]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows], removed


def move_document(session: Session, row_id: int, key: str, source: str, path: str | None, title: str | None) -> None:
    """A document whose file was renamed or moved: new key, source, path and title; chunks and vectors stay.
    The keyword index holds the title beside each chunk, so a new title is written there too."""
    document = session.get(Document, row_id)
    if document is None:
        return
    retitled = document.title != title
    document.key, document.source, document.path, document.title = key, source, path, title
    document.updated_at = utcnow()
    session.flush()
    if retitled:  # the keyword index's triggers fire on an update of the chunk text
        session.execute(update(Chunk).where(Chunk.document_id == row_id).values(text=Chunk.text))


def _chunk_row(document_id: int, collection_id: int, c: NewChunk) -> Chunk:
    return Chunk(
        document_id=document_id,
        collection_id=collection_id,
        ordinal=c.ordinal,
        text=c.text,
        embed_hash=c.embed_hash,
        token_count=c.token_count,
        start_char=c.start_char,
        end_char=c.end_char,
        line_start=c.line_start,
        line_end=c.line_end,
        page=c.page,
        heading_path=c.heading_path,
        chunk_metadata=c.metadata,
    )


def delete_documents(session: Session, document_ids: Sequence[int]) -> list[int]:
    """Delete documents with their chunks; returns the removed chunk ids."""
    removed: list[int] = []
    for batch in _batches(list(document_ids)):
        removed.extend(session.scalars(select(Chunk.id).where(Chunk.document_id.in_(batch))))
        session.execute(delete(Chunk).where(Chunk.document_id.in_(batch)))
        session.execute(delete(Document).where(Document.id.in_(batch)))
    return removed


def list_documents(
    session: Session, collection_id: int, offset: int, limit: int, containing: str | None = None
) -> tuple[list[Document], int]:
    """A page of documents ordered by key, and the total count; ``containing``: only documents whose key,
    title or path contains it (case-insensitive)."""
    where = [Document.collection_id == collection_id]
    if containing:
        needle = containing.lower()
        where.append(or_(*(func.lower(c).contains(needle, autoescape=True)
                           for c in (Document.key, Document.title, Document.path))))  # fmt: skip
    total = session.scalar(select(func.count(Document.id)).where(*where)) or 0
    page = session.scalars(select(Document).where(*where).order_by(Document.key).offset(offset).limit(limit))
    return list(page), int(total)


def get_document(session: Session, collection_id: int, key: str) -> tuple[Document, list[Chunk]] | None:
    doc = session.scalar(select(Document).where(Document.collection_id == collection_id, Document.key == key))
    if doc is None:
        return None
    chunks = session.scalars(select(Chunk).where(Chunk.document_id == doc.id).order_by(Chunk.ordinal))
    return doc, list(chunks)


def chunk_ids(session: Session, collection_id: int) -> np.ndarray:
    ids = session.scalars(select(Chunk.id).where(Chunk.collection_id == collection_id).order_by(Chunk.id))
    return np.fromiter(ids, dtype=np.int64)


def filtered_chunk_ids(session: Session, collection_id: int, condition: Any) -> np.ndarray:
    """Ids of the collection's chunks that satisfy a compiled filter condition."""
    stmt = select(Chunk.id).join(Document).where(Chunk.collection_id == collection_id, condition)
    return np.fromiter(session.scalars(stmt), dtype=np.int64)


def chunk_vectors(
    session: Session, collection: Collection, ids: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(chunk ids, vectors) in batches, joined through the embeddings table."""
    base = (
        select(Chunk.id, Embedding.vector)
        .join(
            Embedding,
            (Embedding.text_hash == Chunk.embed_hash) & (Embedding.model == collection_vectors_key(collection)),
        )
        .where(Chunk.collection_id == collection.id)
    )
    if ids is None:
        id_batches: Iterable[list[int] | None] = [None]
    else:
        id_batches = _batches(ids.tolist())
    for batch in id_batches:
        stmt = base if batch is None else base.where(Chunk.id.in_(batch))
        result = session.execute(stmt.order_by(Chunk.id).execution_options(yield_per=ID_BATCH))
        for part in result.partitions():
            got_ids = np.array([row[0] for row in part], dtype=np.int64)
            vectors = np.frombuffer(b"".join(row[1] for row in part), dtype=np.float32)
            yield got_ids, vectors.reshape(len(got_ids), -1)


def chunks_with_documents(session: Session, ids: Sequence[int]) -> dict[int, tuple[Chunk, Document]]:
    """Chunks and their documents for a list of ids, in one query per batch."""
    found: dict[int, tuple[Chunk, Document]] = {}
    for batch in _batches(list(ids)):
        rows = session.execute(select(Chunk, Document).join(Document).where(Chunk.id.in_(batch)))
        found.update({chunk.id: (chunk, doc) for chunk, doc in rows})
    return found


def _batches(items: list[Any], size: int = ID_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
