"""Consistency checks between SQL (the truth) and each collection's vector index, and their repair."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from sqlalchemy import select, update

from searchsvc.errors import StorageError
from searchsvc.providers.prompts import collection_vectors_key
from searchsvc.storage import repository as repo
from searchsvc.storage.collection_indexes import key as index_key
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.schema import Chunk, Collection, Document, Embedding
from searchsvc.storage.vector_store import VectorIndex
from searchsvc.store import Store

SAMPLE = 5


@dataclass
class CollectionHealth:
    collection: str
    chunks: int
    vectors: int | None
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def check_collection(store: Store, collection: Collection) -> CollectionHealth:
    """Every disagreement between SQL and the saved index of one collection, in plain words."""
    with store.session() as session:
        sql_ids = repo.chunk_ids(session, collection.id)
        unembedded = _chunks_without_vectors(session, collection)
    health = CollectionHealth(collection.name, len(sql_ids), None)
    if unembedded:
        health.problems.append(
            f"{len(unembedded)} chunks have no stored vector for model {collection.embedding_model!r} "
            f"(documents {sorted(unembedded)[:SAMPLE]}...); --repair marks those documents for re-embedding"
        )
    if collection.dimension is None:
        return health
    try:
        index = store.indexes.published(collection)  # raises for another database's index
        if index is None and store.indexes.backend.published(index_key(collection)) is not None:
            health.problems.append(
                f"the index in {store.indexes.backend.describe(index_key(collection))} belongs to no current "
                "collection (a deleted namesake's); --repair rebuilds it"
            )
            return health
    except StorageError as exc:
        health.problems.append(f"the index cannot be read: {exc}")
        return health
    if index is None:
        if len(sql_ids):
            health.problems.append(f"no index file, but SQL has {len(sql_ids)} chunks")
        return health
    health.vectors = index.count()
    _compare(health, collection, index, sql_ids, store.policy)
    return health


def _compare(
    health: CollectionHealth, collection: Collection, index: VectorIndex, sql_ids: np.ndarray, policy: IndexPolicy
) -> None:
    manifest = index.manifest
    if manifest.model != collection.embedding_model:
        health.problems.append(
            f"index built with model {manifest.model!r}, collection uses {collection.embedding_model!r}"
        )
    if index.dimension != collection.dimension:
        health.problems.append(f"index dimension {index.dimension}, collection dimension {collection.dimension}")
    wanted = policy.resolve(collection.index_type, index.count(), manifest.index_type)
    if manifest.index_type != wanted:
        health.problems.append(
            f"index type {manifest.index_type!r}, collection setting {collection.index_type!r} calls for {wanted!r}"
        )
    if manifest.count != index.count():
        health.problems.append(f"manifest says {manifest.count} vectors, the index file holds {index.count()}")
    index_ids = index.ids()
    missing = np.setdiff1d(sql_ids, index_ids)
    extra = np.setdiff1d(index_ids, sql_ids)
    if len(missing):
        health.problems.append(
            f"{len(missing)} chunks are in SQL but not in the index (e.g. ids {missing[:SAMPLE].tolist()})"
        )
    if len(extra):
        health.problems.append(
            f"{len(extra)} vectors in the index belong to no chunk (e.g. ids {extra[:SAMPLE].tolist()})"
        )


def _chunks_without_vectors(session, collection: Collection) -> set[int]:  # type: ignore[no-untyped-def]
    stmt = (
        select(Chunk.document_id)
        .outerjoin(
            Embedding,
            (Embedding.text_hash == Chunk.embed_hash) & (Embedding.model == collection_vectors_key(collection)),
        )
        .where(Chunk.collection_id == collection.id, Embedding.text_hash.is_(None))
        .group_by(Chunk.document_id)
    )
    return set(session.scalars(stmt))


def repair_collection(store: Store, collection: Collection, health: CollectionHealth) -> None:
    """Rebuild the index from SQL; documents whose vectors are missing are marked for re-embedding."""
    with store.writer_lock(collection.name, wait_seconds=30):
        collection = store.get_collection(collection.name)  # under the lock: a model switch may have swapped it
        with store.session() as session:
            broken = _chunks_without_vectors(session, collection)
            if broken:
                session.execute(
                    update(Document).where(Document.id.in_(broken)).values(content_hash="needs-reembedding")
                )
                session.commit()
                health.repaired.append(f"marked {len(broken)} documents for re-embedding: run `searchsvc ingest` again")
        if collection.dimension is not None:
            index = store.rebuild_index(collection)
            health.repaired.append(f"rebuilt the index from SQL: {index.count()} vectors")
