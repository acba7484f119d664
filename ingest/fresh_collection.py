"""A collection created by an ingestion run that then stores nothing is removed again.

Without this, a first ingest that fails (the embeddings API unreachable, or refusing) would leave an empty
collection behind, listed by `searchsvc collections` and pinned to the provider and model of the failed attempt.

Only the run that created the collection removes it, only when the run failed (it raised, or every document
it tried failed), and only when, under the collection's writer lock, it still holds no document: a
concurrent run into the same new collection that stored documents keeps it. A concurrent run that found the
collection before it was removed, but had not written yet, loses nothing either: ``IngestPipeline.run``
creates the collection again under the writer lock before writing (its source's label is registered again
by its next run).

A run killed outright (SIGKILL, power loss) between creating the collection and its first commit runs no
clean-up: the empty collection stays, and the next ingest into it simply uses it (so does
`searchsvc collections`, listing it with 0 documents). That is accepted; nothing inconsistent is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage.schema import Collection, Document, ModelMigration, VectorStore
from searchsvc.storage.vector_store import index_name
from searchsvc.store import Store

log = logging.getLogger(__name__)

DISCARD_LOCK_WAIT_SECONDS = 60.0  # a concurrent writer of the new collection finishes its run first


@dataclass
class FreshRun:
    """The collection a run writes to; ``failed`` is set by a run that ended without raising but stored
    nothing it tried (every document failed), so its new collection goes too."""

    collection: Collection
    created: bool
    failed: bool = False


@contextmanager
def collection_for_run(store: Store, name: str, provider: EmbeddingProvider) -> Iterator[FreshRun]:
    """The collection ``name`` (created for ``provider`` if new) for one run; removed again afterwards if this
    run created it, failed, and the collection still holds no document."""
    collection, created = store.open_collection(name, provider)
    run = FreshRun(collection, created)
    try:
        yield run
    except BaseException:  # Ctrl-C and cancellation too: nothing of a run that never committed stays
        if created:
            discard_if_empty(store, collection)
        raise
    if created and run.failed:
        discard_if_empty(store, collection)


def discard_if_empty(store: Store, collection: Collection, wait_seconds: float = DISCARD_LOCK_WAIT_SECONDS) -> bool:
    """Delete ``collection`` if it (this very row, not one created again since) holds no document, is no vector
    store and has no model switch. Never raises: the run's own error is what the caller must see."""
    try:
        with store.writer_lock(collection.name, wait_seconds):
            with store.session() as session:
                if not _empty(session, collection.id):
                    return False
                # Its skipped-document records and sources go with it (ON DELETE CASCADE).
                session.execute(delete(Collection).where(Collection.id == collection.id))
                session.commit()
            store.indexes.drop(index_name(collection.name, collection.vector_generation or 0))
    except Exception as exc:  # the lock was busy too long, or the database is away: an empty collection stays
        log.warning("could not remove the empty collection %r left by a failed run: %s", collection.name, exc)
        return False
    log.info("removed collection %r: the run that created it failed before storing any document", collection.name)
    return True


def _empty(session: Session, collection_id: int) -> bool:
    if session.get(Collection, collection_id) is None:
        return False  # gone already (or deleted and created again under a new id: not ours)
    for table in (Document, VectorStore, ModelMigration):
        if session.scalar(select(exists().where(table.collection_id == collection_id))):
            return False
    return True
