"""File batches of a vector store: many files added in one call (one ingestion job per chunking), watched
and cancelled together. A batch is its files' rows (they carry its id); its status is read from theirs."""

from __future__ import annotations

from typing import Any

from searchsvc.errors import NotFoundError
from searchsvc.jobs import repository as jobs
from searchsvc.storage import vector_stores as rows
from searchsvc.storage.schema import Collection, VectorStoreFile
from searchsvc.store import Store
from searchsvc.vector_stores.status import counts, file_states


def batch_rows(store: Store, collection: Collection, batch_id: str) -> list[VectorStoreFile]:
    with store.session() as session:
        found = rows.all_files(session, collection, batch_id)
    if not found:
        raise NotFoundError(f"no file batch {batch_id!r} in vector store {collection.name!r}")
    return found


def describe_batch(store: Store, name: str, batch_id: str) -> dict[str, Any]:
    """OpenAI's ``vector_store.files_batch``: in progress while any file is; cancelled if any was; failed if
    every file failed; else completed."""
    collection = store.get_collection(name)
    found = batch_rows(store, collection, batch_id)
    with store.session() as session:
        tally = counts(file_states(session, collection, found))
    if tally["in_progress"]:
        status = "in_progress"
    elif tally["cancelled"]:
        status = "cancelled"
    elif tally["failed"] == tally["total"]:
        status = "failed"
    else:
        status = "completed"
    return {
        "id": batch_id,
        "object": "vector_store.files_batch",
        "created_at": min(row.created_at for row in found),
        "vector_store_id": name,
        "status": status,
        "file_counts": tally,
    }


def cancel_batch(store: Store, name: str, batch_id: str) -> dict[str, Any]:
    """Cancel the batch's jobs: files not yet in stay out (``cancelled``), files already in stay searchable."""
    collection = store.get_collection(name)
    found = batch_rows(store, collection, batch_id)
    with store.session() as session:
        for job_id in {row.job_id for row in found if row.job_id}:
            jobs.request_cancel(session, job_id)
    return describe_batch(store, name, batch_id)
