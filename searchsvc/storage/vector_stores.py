"""The ``vector_stores`` and ``vector_store_files`` tables: what OpenAI's Vector Stores API keeps beside a
collection. A vector store's id is its collection's name; every collection is listed as a vector store."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from searchsvc.errors import NotFoundError
from searchsvc.storage.cursor_pages import Page, paginate
from searchsvc.storage.schema import Chunk, Collection, Document, VectorStore, VectorStoreFile


def stores(session: Session, page: Page) -> tuple[list[tuple[Collection, VectorStore | None]], bool]:
    """A page of collections, each with its vector-store row when it has one."""
    query = select(Collection, VectorStore).outerjoin(VectorStore, VectorStore.collection_id == Collection.id)
    rows, more = paginate(session, query, Collection.id, Collection.name, page, rows=True)
    return [(row[0], row[1]) for row in rows], more


def store_row(session: Session, collection: Collection) -> VectorStore | None:
    return session.get(VectorStore, collection.id)


def save_store(session: Session, collection: Collection, **fields: Any) -> VectorStore:
    """Create or update the collection's vector-store row with ``fields`` (name, store_metadata, expires_after)."""
    row = session.get(VectorStore, collection.id)
    if row is None:
        row = VectorStore(collection_id=collection.id, name=None, store_metadata={}, expires_after=None)
        session.add(row)
    for name, value in fields.items():
        setattr(row, name, value)
    row.last_active_at = int(time.time())
    session.commit()
    return row


def add_file(
    session: Session, collection: Collection, file_id: str, attributes: dict[str, Any], chunking: dict[str, Any],
    batch_id: str | None = None,
) -> VectorStoreFile:  # fmt: skip
    """The file in the store (again: its attributes and chunking replaced, its job forgotten until resubmitted)."""
    row = session.scalars(
        select(VectorStoreFile).where(
            VectorStoreFile.collection_id == collection.id, VectorStoreFile.file_id == file_id
        )
    ).one_or_none()
    if row is None:
        row = VectorStoreFile(collection_id=collection.id, file_id=file_id, created_at=int(time.time()))
        session.add(row)
    row.attributes, row.chunking, row.batch_id, row.job_id = attributes, chunking, batch_id, None
    session.flush()
    return row


def file_row(session: Session, collection: Collection, file_id: str) -> VectorStoreFile:
    row = session.scalars(
        select(VectorStoreFile).where(
            VectorStoreFile.collection_id == collection.id, VectorStoreFile.file_id == file_id
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no file {file_id!r} in vector store {collection.name!r}; list its files to see them")
    return row


def files(
    session: Session, collection: Collection, page: Page, batch_id: str | None = None
) -> tuple[list[VectorStoreFile], bool]:
    query = select(VectorStoreFile).where(VectorStoreFile.collection_id == collection.id)
    if batch_id is not None:
        query = query.where(VectorStoreFile.batch_id == batch_id)
    within = VectorStoreFile.collection_id == collection.id
    return paginate(session, query, VectorStoreFile.seq, VectorStoreFile.file_id, page, within=within)


def all_files(session: Session, collection: Collection, batch_id: str | None = None) -> list[VectorStoreFile]:
    query = select(VectorStoreFile).where(VectorStoreFile.collection_id == collection.id)
    if batch_id is not None:
        query = query.where(VectorStoreFile.batch_id == batch_id)
    return list(session.scalars(query.order_by(VectorStoreFile.seq)))


def remove_file(session: Session, collection: Collection, file_id: str) -> None:
    session.execute(
        delete(VectorStoreFile).where(
            VectorStoreFile.collection_id == collection.id, VectorStoreFile.file_id == file_id
        )
    )


def stores_holding(session: Session, file_id: str) -> list[Collection]:
    """Every collection the file was added to."""
    query = select(Collection).join(VectorStoreFile, VectorStoreFile.collection_id == Collection.id)
    return list(session.scalars(query.where(VectorStoreFile.file_id == file_id)))


def file_documents(session: Session, collection: Collection, file_id: str) -> list[Document]:
    """The documents a file became in the collection (one, or one per JSONL record)."""
    query = select(Document).where(
        Document.collection_id == collection.id, Document.key.startswith(f"{file_id}/", autoescape=True)
    )
    return list(session.scalars(query))


def document_count(session: Session, collection: Collection) -> int:
    return int(session.scalar(select(func.count()).where(Document.collection_id == collection.id)) or 0)


def _in_store(collection: Collection) -> ColumnElement[bool]:
    return VectorStoreFile.collection_id == collection.id


def document_chunks(session: Session, document_id: int) -> list[tuple[int, int, str]]:
    query = select(Chunk.start_char, Chunk.end_char, Chunk.text).where(Chunk.document_id == document_id)
    return [(int(a), int(b), str(t)) for a, b, t in session.execute(query.order_by(Chunk.start_char, Chunk.ordinal))]


def attributes_of(session: Session, collection: Collection, file_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The attributes of the named files in the store (only those: a search names a few of thousands)."""
    query = select(VectorStoreFile.file_id, VectorStoreFile.attributes).where(
        _in_store(collection), VectorStoreFile.file_id.in_(file_ids)
    )
    return {file_id: attributes or {} for file_id, attributes in session.execute(query)}
