"""The one owner of "vector indexes follow SQL".

SQL is the truth; each collection's vector index is derived from it. Every writer (ingestion, HTTP
writes and deletes, ``doctor --repair``, ``reindex``) commits its SQL change first, then hands the ids
it added and removed to ``CollectionIndexes.follow``, which removes, adds the vectors SQL holds, changes
the index type when the size calls for it, and publishes a new generation. Readers get an index brought
in step with SQL when first loaded, and pick up generations published by other processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from searchsvc.errors import NotFoundError, StorageError
from searchsvc.storage import repository as repo
from searchsvc.storage.identity import DatabaseId
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.schema import Collection
from searchsvc.storage.vector_store import IndexBackend, VectorIndex, index_collection, index_name

MIN_PUBLISH_INTERVAL_SECONDS = 2.0  # a running server sees new documents this soon after they are written
PUBLISH_COST_MULTIPLE = 10.0  # but never spend more than a tenth of the time publishing a large index
Publish = Literal["now", "when_due", "no"]


def key(collection: Collection) -> str:
    """The name of the index holding the collection's vectors of its current model (see ``index_name``)."""
    return index_name(collection.name, collection.vector_generation or 0)


class CollectionIndexes:
    """The vector indexes of one database's collections, kept in step with SQL."""

    def __init__(
        self,
        backend: IndexBackend,
        sessions: sessionmaker[Session],
        database_id: DatabaseId,
        policy: IndexPolicy,
        refresh_seconds: float,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self._sessions = sessions
        self._database_id = database_id
        self._refresh_seconds = refresh_seconds
        self._loaded: dict[str, VectorIndex] = {}
        self._checked_at: dict[str, float] = {}
        self._next_publish: dict[str, float] = {}
        self._unpublished: set[str] = set()  # collections whose loaded index holds changes not yet published
        self._reload_lock = threading.RLock()

    # Reading -------------------------------------------------------------------

    def get(self, collection: Collection) -> VectorIndex:
        """The collection's index, loaded once and brought in step with SQL.

        A newer generation published by another process (a separate ``searchsvc ingest``) is picked up
        within ``refresh_seconds``: it is loaded completely, then swapped in."""
        cached = self._loaded.get(key(collection))
        if cached is not None:
            return self._fresher(collection, cached)
        with self._reload_lock:
            if key(collection) in self._loaded:
                return self._loaded[key(collection)]
            return self._load(collection)

    def published(self, collection: Collection) -> VectorIndex | None:
        """The published index as it is (not brought in step), None when there is none or it is left from
        a deleted namesake; StorageError when it was built from another database (a copied folder)."""
        index = self.backend.load(key(collection))
        if index is None or index.manifest.belongs_to(*self.owner(collection)):
            return index
        if index.manifest.database not in (None, self._database_id.namespace):
            raise StorageError(
                f"the index in {self.backend.describe(key(collection))} was built from another database "
                f"(db-{index.manifest.database}), not {self._database_id.describe()}: run `searchsvc reindex` "
                "to rebuild it from this database"
            )
        return None

    def published_type(self, name: str) -> str | None:
        """The type of the published index (``auto`` collections: flat or hnsw by size), if any."""
        manifest = self.backend.published(name)
        return manifest.index_type if manifest is not None else None

    def owner(self, collection: Collection) -> tuple[str, int]:
        """What an index's manifest must name: this database and this collection."""
        return self._database_id.namespace, collection.id

    def loaded(self) -> dict[str, VectorIndex]:
        return dict(self._loaded)

    def forget(self, name: str) -> None:
        """Drop the in-memory copy so the next use loads the published one."""
        self._loaded.pop(name, None)

    # Writing (the caller holds the collection's writer lock) ------------------

    def follow(
        self,
        collection: Collection,
        added: Sequence[int] | np.ndarray = (),
        removed: Sequence[int] | np.ndarray = (),
        publish: Publish = "when_due",
        before_publish: Callable[[], None] | None = None,
    ) -> VectorIndex | None:
        """Apply a committed SQL change: drop ``removed`` ids, add the vectors SQL holds for ``added``.

        ``publish="now"`` ends a write: the index type is fitted to the size and a new generation is
        published if anything changed since the last one; ``"when_due"`` publishes at most every couple
        of seconds (a long ingestion); ``"no"`` leaves it to a later call. None while the collection has
        no vectors."""
        if collection.dimension is None:
            return None
        first_load = key(collection) not in self._loaded
        index = self._load(collection, publish_catch_up=False) if first_load else self.get(collection)
        if not first_load:  # a first load catches up with SQL as it is, this change included
            added, removed = np.asarray(added, dtype=np.int64), np.asarray(removed, dtype=np.int64)
            index.remove(removed)
            if len(added):
                self._add_from_sql(collection, index, added)
            if len(added) or len(removed):
                self._unpublished.add(key(collection))
        if publish == "now" or (
            publish == "when_due" and time.monotonic() >= self._next_publish.get(key(collection), 0.0)
        ):
            converted = publish == "now" and self._fit_type(collection, index)
            if converted or key(collection) in self._unpublished:
                self._publish(collection, index, before_publish)
        return index

    def _publish(self, collection: Collection, index: VectorIndex, before_publish: Callable[[], None] | None) -> None:
        started = time.monotonic()
        index.save(before_publish)
        self._unpublished.discard(key(collection))
        wait = max(MIN_PUBLISH_INTERVAL_SECONDS, PUBLISH_COST_MULTIPLE * (time.monotonic() - started))
        self._next_publish[key(collection)] = time.monotonic() + wait

    def rebuild(self, collection: Collection) -> VectorIndex:
        """A fresh index built from SQL alone (no provider call), published."""
        with self._sessions() as session:
            index = self._empty(collection, count=len(repo.chunk_ids(session, collection.id)))
            for ids, vectors in repo.chunk_vectors(session, collection):
                index.add(ids, vectors)
        index.save()
        self._loaded[key(collection)] = index
        return index

    def drop(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._unpublished.discard(name)
        self.backend.drop(name)

    # Inside --------------------------------------------------------------------

    def _load(self, collection: Collection, publish_catch_up: bool = True) -> VectorIndex:
        """Load the published index and catch it up with SQL; a reader publishes the catch-up at once,
        a writer (``follow``) publishes it with its own change."""
        if collection.dimension is None:
            raise NotFoundError(f"collection {collection.name!r} has no vectors yet; ingest documents first")
        index = self.published(collection)
        model = collection.embedding_model
        if index is None or index.dimension != collection.dimension or index.manifest.model != model:
            with self._sessions() as session:
                count = len(repo.chunk_ids(session, collection.id))
            index = self._empty(collection, count)  # auto: the type this size calls for
        if self._catch_up(collection, index):
            if publish_catch_up:
                index.save()
            else:
                self._unpublished.add(key(collection))
        self._loaded[key(collection)] = index
        self._checked_at[key(collection)] = time.monotonic()
        return index

    def _catch_up(self, collection: Collection, index: VectorIndex) -> bool:
        """Add vectors SQL has and the index lacks; drop ids SQL no longer has. True when it changed."""
        with self._sessions() as session:
            sql_ids = repo.chunk_ids(session, collection.id)
        index_ids = index.ids()
        missing = np.setdiff1d(sql_ids, index_ids, assume_unique=True)
        extra = np.setdiff1d(index_ids, sql_ids, assume_unique=True)
        index.remove(extra)
        if len(missing):
            self._add_from_sql(collection, index, missing)
        return bool(len(missing) or len(extra))

    def _add_from_sql(self, collection: Collection, index: VectorIndex, ids: np.ndarray) -> None:
        with self._sessions() as session:
            for batch_ids, vectors in repo.chunk_vectors(session, collection, ids):
                index.add(batch_ids, vectors)

    def _fresher(self, collection: Collection, cached: VectorIndex) -> VectorIndex:
        now = time.monotonic()
        if now - self._checked_at.get(key(collection), 0.0) < self._refresh_seconds:
            return cached
        self._checked_at[key(collection)] = now
        self._let_go_of_dropped(collection)
        manifest = self.backend.published(key(collection))
        if manifest is None:  # once published, now gone: dropped by another process (an old model's generation)
            if cached.manifest.generation > 0 and key(collection) not in self._unpublished:
                self._loaded.pop(key(collection), None)
            return cached
        if manifest.generation <= cached.manifest.generation:
            return cached
        with self._reload_lock:
            current = self._loaded.get(key(collection), cached)
            if current.manifest.generation >= manifest.generation:
                return current
            fresh = self.backend.load(key(collection))
            if fresh is None or fresh.dimension != collection.dimension:
                return current
            if not fresh.manifest.belongs_to(*self.owner(collection)):
                return current
            self._loaded[key(collection)] = fresh
            return fresh

    def _let_go_of_dropped(self, collection: Collection) -> None:
        """Unload the collection's other generations once their index is gone (a model switch's old one,
        dropped by `--drop-old` in any process): a server would otherwise hold it until restarted."""
        others = [n for n in self._loaded if n != key(collection) and index_collection(n) == collection.name]
        for name in others:
            if name not in self._unpublished and self.backend.published(name) is None:
                self._loaded.pop(name, None)

    def _empty(self, collection: Collection, count: int = 0) -> VectorIndex:
        assert collection.dimension is not None
        index_type = self.policy.resolve(collection.index_type, count)
        return self.backend.create(
            key(collection), collection.embedding_model, collection.dimension, index_type, self.owner(collection)
        )

    def _fit_type(self, collection: Collection, index: VectorIndex) -> bool:
        """Convert to the type the size calls for (``auto`` collections); True when it changed."""
        current = index.manifest.index_type
        wanted = self.policy.resolve(collection.index_type, index.count(), current)
        if wanted == current:
            return False
        index.convert(wanted)
        return True
