"""The ``model_migrations`` table: switches of a collection's embedding model, and the generations they keep.

A collection's row names the model its searches use and the index generation holding its vectors
(``collections.vector_generation``). A migration builds generation ``to`` beside ``from``; the swap is one
conditional update of the collection's row. The generation not in use stays (for ``--rollback``, and for a
search that resolved its model just before the swap) until ``--drop-old``.

Statuses: ``building`` (shadow being embedded and indexed) → ``swapped`` (``to`` in use, ``from`` kept) →
``rolled_back`` (``from`` in use again, ``to`` kept) → ``finished`` (the unused generation dropped);
``cancelled`` (a build given up; its shadow dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from searchsvc.errors import MigrationStateError
from searchsvc.providers.prompts import Embedder, built_by
from searchsvc.storage.schema import Chunk, Collection, Document, Embedding, ModelMigration, utcnow

OPEN = ("building", "swapped", "rolled_back")  # a migration whose other generation still exists
Side = Literal["from", "to"]


def open_migration(session: Session, collection_id: int) -> ModelMigration | None:
    """The collection's migration still building or still keeping a second generation (at most one)."""
    return session.scalar(
        select(ModelMigration)
        .where(ModelMigration.collection_id == collection_id, ModelMigration.status.in_(OPEN))
        .order_by(ModelMigration.id.desc())
        .limit(1)
    )


def migrations_of(session: Session, collection_id: int) -> list[ModelMigration]:
    """Every migration of the collection, newest first."""
    stmt = select(ModelMigration).where(ModelMigration.collection_id == collection_id)
    return list(session.scalars(stmt.order_by(ModelMigration.id.desc())))


def kept_generations(session: Session, collection_id: int) -> set[int]:
    """Every generation an open migration still keeps (besides the collection's own)."""
    rows = session.execute(
        select(ModelMigration.from_generation, ModelMigration.to_generation).where(
            ModelMigration.collection_id == collection_id, ModelMigration.status.in_(OPEN)
        )
    )
    return {generation for row in rows for generation in row}


def next_generation(session: Session, collection: Collection) -> int:
    """A generation number no index of this collection has had."""
    used = session.scalar(select(func.max(ModelMigration.to_generation)).where(
        ModelMigration.collection_id == collection.id))  # fmt: skip
    return max(used or 0, collection.vector_generation or 0) + 1


def view(collection: Collection, m: ModelMigration, side: Side) -> Collection:
    """The collection as one side of a migration sees it: that model, dimension and index generation
    (a detached copy: nothing is written through it)."""
    provider, model, prompts, dimension, generation = (
        (m.from_provider, m.from_model, m.from_prompts, m.from_dimension, m.from_generation)
        if side == "from"
        else (m.to_provider, m.to_model, m.to_prompts, m.to_dimension, m.to_generation)
    )
    return Collection(
        id=collection.id,
        name=collection.name,
        provider=provider,
        embedding_model=model,
        embedding_prompts=prompts,
        dimension=dimension,
        index_type=collection.index_type,
        chunk_tokens=collection.chunk_tokens,
        chunk_overlap=collection.chunk_overlap,
        created_at=collection.created_at,
        vector_generation=generation,
    )


def kept_view(session: Session, collection: Collection, provider: Embedder) -> Collection | None:
    """The generation of ``provider``'s model (and prompts) an open migration keeps beside the one in use, if
    any: a search whose query was embedded with the model of a moment ago finishes on the vectors of that model."""
    migration = open_migration(session, collection.id)
    if migration is None:
        return None
    for side in ("from", "to"):
        other = view(collection, migration, side)  # type: ignore[arg-type]
        in_use = other.vector_generation == collection.vector_generation
        if not in_use and built_by(other, provider) and other.dimension is not None:
            return other
    return None


def swap(session: Session, collection: Collection, migration: ModelMigration, to: Side, status: str) -> Collection:
    """Point the collection at side ``to`` of the migration, in the caller's transaction: one conditional
    update (refused when the row changed since it was read), and the migration's new status."""
    target = view(collection, migration, to)
    values = {"provider": target.provider, "embedding_model": target.embedding_model,
              "embedding_prompts": target.embedding_prompts, "dimension": target.dimension,
              "vector_generation": target.vector_generation}  # fmt: skip
    other = migration.from_generation if to == "to" else migration.to_generation
    same_row = (Collection.id == collection.id) & (Collection.vector_generation == other)
    changed = session.execute(update(Collection).where(same_row).values(**values)).rowcount
    if changed != 1:
        raise MigrationStateError(f"collection {collection.name!r} changed during the swap; run the command again")
    migration.status = status
    migration.swapped_at = utcnow()
    return target


@dataclass(frozen=True)
class StoredChunk:
    """What a chunk's embedded text is made from."""

    id: int
    embed_hash: str
    text: str
    heading_path: list[str]
    title: str | None
    key: str


def chunk_pages(sessions: Callable[[], Session], collection_id: int, page: int = 2048) -> Iterator[list[StoredChunk]]:
    """The collection's chunks with their documents' titles, ``page`` at a time, by id (a short read each)."""
    after = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(Chunk.id, Chunk.embed_hash, Chunk.text, Chunk.heading_path, Document.title, Document.key)
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.collection_id == collection_id, Chunk.id > after)
                .order_by(Chunk.id)
                .limit(page)
            ).all()
        if not rows:
            return
        yield [StoredChunk(r[0], r[1], r[2], list(r[3] or []), r[4], r[5]) for r in rows]
        after = rows[-1][0]


def chunks_without_vectors(session: Session, collection_id: int, model: str) -> int:
    """How many of the collection's chunks have no vector under ``model`` (a vectors key: a swap needs none)."""
    vector = select(Embedding.text_hash).where(Embedding.model == model, Embedding.text_hash == Chunk.embed_hash)
    stmt = select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection_id, ~vector.exists())
    return int(session.scalar(stmt) or 0)


def as_dict(migration: ModelMigration, collection: str) -> dict[str, Any]:
    """A migration as the CLI's --json and the API show it."""

    def side(prefix: str) -> dict[str, Any]:
        return {key: getattr(migration, f"{prefix}_{key}") for key in ("provider", "model", "dimension", "generation")}

    return {
        "id": migration.id,
        "object": "collection.migration",
        "collection": collection,
        "status": migration.status,
        "from": side("from"),
        "to": side("to"),
        "chunks": migration.chunks_total,
        "texts_embedded": migration.texts_embedded,
        "texts_cached": migration.texts_cached,
        "tokens": migration.tokens,
        "requests": migration.requests,
        "message": migration.message,
        "can_roll_back": migration.status == "swapped",
        "created_at": migration.created_at,
        "heartbeat_at": migration.heartbeat_at,
        "swapped_at": migration.swapped_at,
        "finished_at": migration.finished_at,
    }
