"""The store: SQL (truth) plus one vector index per collection (derived, rebuilt from SQL).

Callers see collections and indexes; how the two are kept in step lives here.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from searchsvc.config import Settings
from searchsvc.errors import CollectionBusyError, IndexMismatchError, InvalidInputError, NotFoundError, StorageError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage import repository as repo
from searchsvc.storage.database import open_database
from searchsvc.storage.identity import read_database_id
from searchsvc.storage.index_files import read_manifest
from searchsvc.storage.schema import Chunk, Collection, Document
from searchsvc.storage.vector_index import FaissIndex, IndexPolicy

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


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
        self._indexes: dict[str, FaissIndex] = {}
        self._checked_at: dict[str, float] = {}
        self._reload_lock = threading.RLock()
        self.policy = IndexPolicy(
            hnsw_min_chunks=settings.hnsw_min_chunks,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
        )

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    # Collections -------------------------------------------------------------

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

    def ensure_collection(self, name: str, provider: EmbeddingProvider, index_type: str | None = None) -> Collection:
        """The collection ``name``, created for this provider's model if new; refuses another model."""
        validate_collection_name(name)
        with self.session() as session:
            collection = repo.get_collection(session, name)
            if collection is None:
                collection = Collection(
                    name=name,
                    provider=provider.kind,
                    embedding_model=provider.model,
                    dimension=provider.dimension,
                    index_type=index_type or self.settings.index_type,
                    chunk_tokens=self.settings.chunk_tokens,
                    chunk_overlap=self.settings.chunk_overlap,
                )
                session.add(collection)
                session.commit()
                return collection
        check_model(collection, provider)
        return collection

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
        collection = self.get_collection(name)
        with self.writer_lock(name, lock_wait_seconds):
            with self.session() as session:
                session.execute(delete(Chunk).where(Chunk.collection_id == collection.id))
                session.execute(delete(Document).where(Document.collection_id == collection.id))
                session.execute(delete(Collection).where(Collection.id == collection.id))
                session.commit()
            self._indexes.pop(name, None)
            shutil.rmtree(self.index_folder(name), ignore_errors=True)

    def delete_document(self, name: str, key: str, lock_wait_seconds: float = 30.0) -> int:
        """Delete one document with its chunks and vectors; returns how many chunks went."""
        collection = self.get_collection(name)
        with self.writer_lock(name, lock_wait_seconds):
            index = self.index(collection) if collection.dimension is not None else None
            with self.session() as session:
                found = repo.get_document(session, collection.id, key)
                if found is None:
                    raise NotFoundError(f"no document {key!r} in collection {name!r}")
                removed = repo.delete_documents(session, [found[0].id])
                session.commit()
            if index is not None:
                index.remove(np.array(removed, dtype=np.int64))
                self.fit_index_type(collection, index)
                index.save()
        return len(removed)

    # Indexes -----------------------------------------------------------------

    def index_type_in_use(self, name: str) -> str | None:
        """The type of the collection's saved index (``auto`` collections: flat or hnsw by size), if any."""
        manifest = read_manifest(self.index_folder(name))
        return manifest.index_type if manifest is not None else None

    def index_folder(self, name: str) -> Path:
        return self.index_dir / "collections" / validate_collection_name(name)

    def owner(self, collection: Collection) -> tuple[str, int]:
        """What an index's manifest must name: this database and this collection."""
        return self.database_id.namespace, collection.id

    def load_saved_index(self, collection: Collection) -> FaissIndex | None:
        """The collection's saved index, None when there is none or it is left from a deleted namesake;
        StorageError when it was built from another database (a copied folder)."""
        index = FaissIndex.load(self.index_folder(collection.name), self.policy)
        if index is None or index.manifest.belongs_to(*self.owner(collection)):
            return index
        if index.manifest.database not in (None, self.database_id.namespace):
            raise StorageError(
                f"the index in {index.folder} was built from another database (index folder "
                f"db-{index.manifest.database}), not {self.database_id.describe()}: run `searchsvc reindex` to "
                "rebuild it from this database"
            )
        return None

    def index(self, collection: Collection) -> FaissIndex:
        """The collection's index, loaded once and brought in step with SQL.

        A newer generation saved by another process (a separate ``searchsvc ingest``) is
        picked up within ``index_refresh_seconds``: it is loaded completely, then swapped in.
        """
        cached = self._indexes.get(collection.name)
        if cached is not None:
            return self._fresher(collection, cached)
        with self._reload_lock:
            if collection.name in self._indexes:
                return self._indexes[collection.name]
            return self._load_index(collection)

    def _load_index(self, collection: Collection) -> FaissIndex:
        if collection.dimension is None:
            raise NotFoundError(f"collection {collection.name!r} has no vectors yet; ingest documents first")
        index = self.load_saved_index(collection)
        if (
            index is None
            or index.dimension != collection.dimension
            or index.manifest.model != collection.embedding_model
        ):
            with self.session() as session:
                count = len(repo.chunk_ids(session, collection.id))
            index = self._empty_index(collection, count)  # auto: the type this size calls for
        added, removed = self.sync_index(collection, index)
        if added or removed:
            index.save()
        self._indexes[collection.name] = index
        self._checked_at[collection.name] = time.monotonic()
        return index

    def _fresher(self, collection: Collection, cached: FaissIndex) -> FaissIndex:
        now = time.monotonic()
        if now - self._checked_at.get(collection.name, 0.0) < self.settings.index_refresh_seconds:
            return cached
        self._checked_at[collection.name] = now
        manifest = read_manifest(self.index_folder(collection.name))
        if manifest is None or manifest.generation <= cached.manifest.generation:
            return cached
        with self._reload_lock:
            current = self._indexes.get(collection.name, cached)
            if current.manifest.generation >= manifest.generation:
                return current
            fresh = FaissIndex.load(self.index_folder(collection.name), self.policy)
            if fresh is None or fresh.dimension != collection.dimension:
                return current
            if not fresh.manifest.belongs_to(*self.owner(collection)):
                return current
            self._indexes[collection.name] = fresh
            return fresh

    def rebuild_index(self, collection: Collection) -> FaissIndex:
        """A fresh index built from SQL alone (no provider call), saved atomically."""
        with self.session() as session:
            index = self._empty_index(collection, count=len(repo.chunk_ids(session, collection.id)))
            for ids, vectors in repo.chunk_vectors(session, collection):
                index.add(ids, vectors)
        index.save()
        self._indexes[collection.name] = index
        return index

    def sync_index(self, collection: Collection, index: FaissIndex) -> tuple[int, int]:
        """Add vectors SQL has and the index lacks; drop ids SQL no longer has."""
        with self.session() as session:
            sql_ids = repo.chunk_ids(session, collection.id)
            index_ids = index.ids()
            missing = np.setdiff1d(sql_ids, index_ids, assume_unique=True)
            extra = np.setdiff1d(index_ids, sql_ids, assume_unique=True)
            index.remove(extra)
            for ids, vectors in repo.chunk_vectors(session, collection, missing) if len(missing) else []:
                index.add(ids, vectors)
        return len(missing), len(extra)

    def _empty_index(self, collection: Collection, count: int = 0) -> FaissIndex:
        assert collection.dimension is not None
        index_type = self.policy.resolve(collection.index_type, count)
        folder = self.index_folder(collection.name)
        return FaissIndex.create(
            folder, collection.embedding_model, collection.dimension, index_type, self.policy, self.owner(collection)
        )

    def fit_index_type(self, collection: Collection, index: FaissIndex) -> bool:
        """Convert the index to the type its size calls for (``auto`` collections); True when it changed.

        Writers call this at the end of a write, with the collection's writer lock held."""
        current = index.manifest.index_type
        wanted = self.policy.resolve(collection.index_type, index.count(), current)
        if wanted == current:
            return False
        index.convert(wanted)
        return True

    def loaded_indexes(self) -> dict[str, FaissIndex]:
        return dict(self._indexes)

    def forget_index(self, name: str) -> None:
        """Drop the in-memory copy so the next use reloads from disk."""
        self._indexes.pop(name, None)

    @contextmanager
    def writer_lock(self, name: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """Exclusive right to write a collection; a second writer waits up to ``wait_seconds``, then is refused."""
        locks = self.index_dir / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        lock_path = locks / f"{validate_collection_name(name)}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, name, wait_seconds)
            yield
        finally:
            os.close(fd)


def check_model(collection: Collection, provider: EmbeddingProvider) -> None:
    """Refuse to mix vectors of different models (or of one model name from different providers) in one collection."""
    if (collection.provider, collection.embedding_model) != (provider.kind, provider.model):
        raise IndexMismatchError(
            f"collection {collection.name!r} was embedded with {collection.provider} model "
            f"{collection.embedding_model!r} ({collection.dimension} dimensions), but the configured provider is "
            f"{provider.kind} model {provider.model!r}. Vectors of different models cannot be mixed: re-index into a "
            "new collection with --collection NEW_NAME, or configure the original model"
        )


def _acquire(fd: int, name: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise CollectionBusyError(
                    f"another process is writing to collection {name!r}; wait for it to finish and run again"
                ) from None
            time.sleep(0.05)
