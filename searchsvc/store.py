"""The store: SQL (truth) plus one vector index per collection (derived, rebuilt from SQL).

Callers see collections and indexes; how the two are kept in step lives here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from searchsvc.config import Settings
from searchsvc.errors import (
    CollectionBusyError,
    IndexMismatchError,
    InvalidInputError,
    MigrationBusyError,
    NotFoundError,
)
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.prompts import built_by, from_json
from searchsvc.storage import model_migrations
from searchsvc.storage import repository as repo
from searchsvc.storage.collection_indexes import CollectionIndexes
from searchsvc.storage.collection_indexes import key as index_key
from searchsvc.storage.database import open_database
from searchsvc.storage.faiss_index import FaissBackend
from searchsvc.storage.identity import read_database_id
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.pgvector_index import PgVectorBackend
from searchsvc.storage.query_vectors import SqlQueryShelf
from searchsvc.storage.schema import Chunk, Collection, Document
from searchsvc.storage.usage_ledger import Prices, SqlLedger
from searchsvc.storage.vector_store import IndexBackend, VectorIndex, index_name

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class CollectionSummary:
    name: str
    provider: str
    embedding_model: str
    dimension: int | None
    index_type: str
    index_in_use: str | None
    documents: int
    chunks: int
    created_at: datetime


class Store:
    """Opens the database (migrating it to head) and the collections' vector indexes."""

    def __init__(self, settings: Settings, create: bool = True) -> None:
        """``create=False``: read-only use; a missing database is an error and nothing is created."""
        self.settings = settings
        self.engine, self._sessions = open_database(settings.resolved_database_url, create)
        with self.session() as session:
            self.database_id = read_database_id(session, settings.resolved_database_url)
        # Each database has its own folder of index folders and lock files: two databases configured
        # with one index folder never share files, and no collection name can reach a lock file.
        self.index_dir = Path(settings.resolved_index_dir) / f"db-{self.database_id.namespace}"
        self.policy = IndexPolicy(
            hnsw_min_chunks=settings.hnsw_min_chunks,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
        )
        self.index_backend = vector_backend(settings, self.engine, self.index_dir, self.policy)
        self.indexes = CollectionIndexes(
            self.index_backend,
            self._sessions,
            self.database_id,
            self.policy,
            settings.index_refresh_seconds,
        )

    def prices(self) -> Prices:
        return Prices(self.settings.embedding_prices, self.settings.chat_prices)

    def usage_ledger(self) -> SqlLedger:
        """The token ledger's writer for searches and answers (its owner closes it, last)."""
        return SqlLedger(self.session, self.prices())

    def query_shelf(self, max_rows: int) -> SqlQueryShelf | None:
        """Query vectors kept in this database for every process (None with ``max_rows`` 0)."""
        return SqlQueryShelf(self.session, max_rows) if max_rows > 0 else None

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    # Collections -------------------------------------------------------------

    def summaries(self, name: str | None = None) -> list[CollectionSummary]:
        """Every collection (or the one named) with its sizes and the index type built for it; what
        `searchsvc collections` and GET /v1/collections both show."""
        with self.session() as session:
            rows = repo.list_collections(session)
        found = []
        for c, documents, chunks in rows:
            if name is None or c.name == name:
                in_use = self.indexes.published_type(index_key(c))
                found.append(CollectionSummary(c.name, c.provider, c.embedding_model, c.dimension, c.index_type,
                                               in_use, documents, chunks, c.created_at))  # fmt: skip
        return found

    def collection_names(self) -> list[str]:
        """Every collection's name, in order (no counts: cheap enough for every GET /v1/models)."""
        with self.session() as session:
            return list(session.scalars(select(Collection.name).order_by(Collection.name)))

    def get_collection(self, name: str) -> Collection:
        with self.session() as session:
            collection = repo.get_collection(session, validate_collection_name(name))
        if collection is None:
            raise NotFoundError(f"no collection named {name!r}; `searchsvc collections` lists them")
        return collection

    def find_collection(self, name: str) -> Collection | None:
        """The collection ``name``, or None when there is none."""
        with self.session() as session:
            return repo.get_collection(session, validate_collection_name(name))

    def collection_for(self, name: str, provider: EmbeddingProvider) -> Collection:
        """The collection as ``provider``'s model sees it: the row, or the generation of that model a model
        switch keeps beside it (a search that embedded its query just before the swap finishes on the vectors
        of the same model); IndexMismatchError when the collection has no vectors of that model."""
        collection = self.get_collection(name)
        if built_by(collection, provider):
            return collection
        with self.session() as session:
            kept = model_migrations.kept_view(session, collection, provider)
        if kept is None:
            check_model(collection, provider)
        return kept or collection

    def ensure_collection(self, name: str, provider: EmbeddingProvider, index_type: str | None = None) -> Collection:
        """The collection ``name``, created for this provider's model if new; refuses another model."""
        return self.open_collection(name, provider, index_type)[0]

    def open_collection(
        self, name: str, provider: EmbeddingProvider, index_type: str | None = None
    ) -> tuple[Collection, bool]:
        """``ensure_collection``, and whether this call created the collection (``ingest.fresh_collection``)."""
        validate_collection_name(name)
        with self.session() as session:
            collection = repo.get_collection(session, name)
            if collection is None:
                collection = Collection(
                    name=name,
                    provider=provider.kind,
                    embedding_model=provider.model,
                    embedding_prompts=provider.prompts.to_json(),
                    dimension=provider.dimension,
                    index_type=index_type or self.settings.index_type,
                    chunk_tokens=self.settings.chunk_tokens,
                    chunk_overlap=self.settings.chunk_overlap,
                )
                session.add(collection)
                try:
                    session.commit()
                except IntegrityError:  # another process created it at that moment: that one is the creator
                    session.rollback()
                    return self.open_collection(name, provider, index_type)[0], False
                return collection, True
            switched = model_migrations.open_migration(session, collection.id) is not None
        if switched and not built_by(collection, provider):
            raise IndexMismatchError(
                f"collection {name!r} switched to {collection.provider} model {collection.embedding_model!r} while "
                f"this run was getting ready with {provider.describe()}; run it again (nothing was stored)"
            )
        check_model(collection, provider)
        return collection, False

    def source_label(self, collection: Collection, location: str, parts: list[str]) -> str:
        """The stable label of a folder or file ingested into ``collection`` (see ``repo.source_label``)."""
        for attempt in range(3):
            with self.session() as session:
                try:
                    label = repo.source_label(session, collection.id, location, parts)
                    session.commit()
                    return label
                except IntegrityError:  # another writer registered a source at that moment: look again
                    session.rollback()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def registered_folder(self, collection: Collection, file: Path) -> tuple[Path, str] | None:
        """The nearest folder above ``file`` already ingested into ``collection`` as a source, with its label."""
        ancestors = [str(folder) for folder in file.parents]
        with self.session() as session:
            found = repo.registered_source(session, collection.id, ancestors)
        return (Path(found[0]), found[1]) if found is not None else None

    def record_dimension(self, collection: Collection, dimension: int) -> Collection:
        """Fix a new collection's dimension from its first vectors; refuse a different one later."""
        if collection.dimension == dimension:
            return collection
        if collection.dimension is not None:
            raise IndexMismatchError(
                f"collection {collection.name!r} holds {collection.dimension}-dimensional vectors but the provider "
                f"returned {dimension}; nothing was stored. Re-index into a new collection"
            )
        with self.session() as session:
            row = session.get(Collection, collection.id)
            assert row is not None
            row.dimension = dimension
            session.commit()
        collection.dimension = dimension
        return collection

    def delete_collection(self, name: str, lock_wait_seconds: float = 30.0) -> None:
        self.get_collection(name)  # 404 before waiting for the lock
        with self.writer_lock(name, lock_wait_seconds):
            collection = self.get_collection(name)  # read under the lock: a model switch may have swapped it
            with self.session() as session:
                generations = model_migrations.kept_generations(session, collection.id)
                session.execute(delete(Chunk).where(Chunk.collection_id == collection.id))
                session.execute(delete(Document).where(Document.collection_id == collection.id))
                session.execute(delete(Collection).where(Collection.id == collection.id))
                session.commit()
            for generation in {collection.vector_generation or 0, *generations}:
                self.indexes.drop(index_name(name, generation))

    def delete_document(self, name: str, key: str, lock_wait_seconds: float = 30.0) -> int:
        """Delete one document with its chunks and vectors; returns how many chunks went."""
        self.get_collection(name)
        with self.writer_lock(name, lock_wait_seconds):
            collection = self.get_collection(name)  # under the lock: the generation a swap may have changed
            with self.session() as session:
                found = repo.get_document(session, collection.id, key)
                if found is None:
                    raise NotFoundError(f"no document {key!r} in collection {name!r}")
                removed = repo.delete_documents(session, [found[0].id])
                session.commit()
            self.indexes.follow(collection, removed=removed, publish="now")
        return len(removed)

    # Indexes (kept in step with SQL by ``self.indexes``) --------------------------

    def index(self, collection: Collection) -> VectorIndex:
        """The collection's vector index, in step with SQL (see ``CollectionIndexes.get``)."""
        return self.indexes.get(collection)

    def index_type_in_use(self, name: str) -> str | None:
        """The type of the collection's published index (``auto`` collections: flat or hnsw by size)."""
        return self.indexes.published_type(self._index_name(name))

    def drop_index(self, name: str) -> None:
        """Forget a collection's vector index (derived data): its next use rebuilds it from SQL."""
        self.indexes.drop(self._index_name(name))

    def index_folder(self, name: str) -> Path:
        """Where the FAISS backend keeps the collection's index files."""
        return self.index_backend.folder(self._index_name(name))

    def _index_name(self, name: str) -> str:
        """The name of the index of the collection's current model (its own name when it never switched)."""
        found = self.find_collection(name)
        return index_key(found) if found is not None else name

    def rebuild_index(self, collection: Collection) -> VectorIndex:
        """A fresh index from SQL alone, published; the caller holds the writer lock."""
        return self.indexes.rebuild(collection)

    def loaded_indexes(self) -> dict[str, VectorIndex]:
        return self.indexes.loaded()

    def forget_index(self, name: str) -> None:
        """Drop the in-memory copy so the next use loads the published one."""
        self.indexes.forget(self._index_name(name))

    @contextmanager
    def writer_lock(self, name: str, wait_seconds: float = 0.0, role: str = "writer") -> Iterator[None]:
        """Exclusive right to write a collection; a second writer waits up to ``wait_seconds``, then is refused.
        ``role="migration"``: the right to build the collection's model switch (writers go on beside it).

        A lock file beside the FAISS indexes (one machine); with pgvector, a PostgreSQL advisory lock, so
        writers on every machine sharing the database take turns."""
        validate_collection_name(name)
        busy = (
            f"another process is writing to collection {name!r}; wait for it to finish and run again"
            if role == "writer"
            else f"another process is building the model switch of collection {name!r}; "
            "`searchsvc collections migrate NAME` shows its progress"
        )
        if self.settings.vector_backend == "pgvector":
            error = MigrationBusyError if role == "migration" else CollectionBusyError
            with advisory_lock(self.engine, f"{role}:{self.database_id.namespace}:{name}", busy, wait_seconds, error):
                yield
            return
        locks = self.index_dir / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        lock_path = locks / (f"{name}.lock" if role == "writer" else f"{name}.{role}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, busy, wait_seconds, MigrationBusyError if role == "migration" else CollectionBusyError)
            yield
        finally:
            os.close(fd)


def vector_backend(settings: Settings, engine: Engine, index_dir: Path, policy: IndexPolicy) -> IndexBackend:
    """The configured vector store: FAISS files under ``index_dir``, or pgvector tables in the database."""
    if settings.vector_backend == "pgvector":
        return PgVectorBackend(engine, policy, settings.pgvector_element, settings.pgvector_build_memory)
    return FaissBackend(index_dir, policy)


def check_model(collection: Collection, provider: EmbeddingProvider) -> None:
    """Refuse to mix vectors of different models (or of one model name from different providers) in one collection."""
    if (collection.provider, collection.embedding_model) == (provider.kind, provider.model):
        recorded = from_json(collection.embedding_prompts)
        if recorded != provider.prompts:
            raise IndexMismatchError(
                f"collection {collection.name!r} was embedded with {recorded.describe()}, but this provider uses "
                f"{provider.prompts.describe()}: its queries would not match. Reach it through the collection's "
                "own provider (searchsvc does), or re-index into a new collection with --collection NEW_NAME"
            )
    else:
        raise IndexMismatchError(
            f"collection {collection.name!r} was embedded with {collection.provider} model "
            f"{collection.embedding_model!r} ({collection.dimension} dimensions), but the configured provider is "
            f"{provider.kind} model {provider.model!r}. Vectors of different models cannot be mixed: re-index into a "
            "new collection with --collection NEW_NAME, or configure the original model"
        )


@contextmanager
def advisory_lock(
    engine: Engine, key: str, busy: str, wait_seconds: float, error: type[CollectionBusyError] = CollectionBusyError
) -> Iterator[None]:
    """A session-level PostgreSQL advisory lock on ``key``, held on its own connection until exit."""
    number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    deadline = time.monotonic() + wait_seconds
    with engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}).scalar_one():
            if time.monotonic() >= deadline:
                raise error(busy)
            time.sleep(0.05)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
            conn.commit()


def _acquire(fd: int, busy: str, wait_seconds: float, error: type[CollectionBusyError]) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise error(busy) from None
            time.sleep(0.05)
