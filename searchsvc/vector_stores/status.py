"""Where each file of a vector store stands, read from what is already in SQL: the documents the file
became (completed), the reason it became none (failed), and its ingestion job (in progress, cancelled,
failed). Nothing is written to track it, so a killed worker or server can never leave it stale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchsvc.storage.schema import Collection, Document, IngestJob, SkippedDocument, UploadedFile, VectorStoreFile

RUNNING = ("queued", "running")


@dataclass(frozen=True)
class FileState:
    status: str  # in_progress, completed, failed, cancelled
    last_error: dict[str, str] | None = None
    usage_bytes: int = 0


def file_states(session: Session, collection: Collection, rows: list[VectorStoreFile]) -> dict[str, FileState]:
    """The state of each file in ``rows`` (by file id), in a handful of queries whatever their number."""
    ids = [row.file_id for row in rows]
    if not ids:
        return {}
    made = _documents_by_file(session, collection, ids)
    skipped = _skips_by_file(session, collection, ids)
    jobs = _jobs(session, [row.job_id for row in rows if row.job_id])
    uploaded = dict(session.execute(select(UploadedFile.id, UploadedFile.bytes).where(UploadedFile.id.in_(ids))).all())
    return {row.file_id: _state(row, made, skipped, jobs, uploaded) for row in rows}


def _state(
    row: VectorStoreFile,
    made: set[str],
    skipped: dict[str, str],
    jobs: dict[str, IngestJob],
    uploaded: dict[str, int],
) -> FileState:
    job = jobs.get(row.job_id or "")
    if job is not None and job.status in RUNNING and row.file_id not in made:
        return FileState("in_progress")
    if row.file_id in made:
        return FileState("completed", usage_bytes=uploaded.get(row.file_id, 0))  # the file's size, as OpenAI counts
    if row.file_id in skipped:
        return FileState("failed", {"code": "invalid_file", "message": skipped[row.file_id]})
    if job is None:
        return FileState("in_progress")  # its job is being submitted
    if job.status == "cancelled":
        return FileState("cancelled")
    if job.status == "failed":
        message = job.message or "the ingestion job failed; see the server log"
        return FileState("failed", {"code": "server_error", "message": message})
    if row.file_id not in uploaded:
        return FileState("failed", {"code": "invalid_file", "message": "the file was deleted before it was ingested"})
    return FileState("failed", {"code": "server_error", "message": "the file's job ended without ingesting it"})


def _prefix(key: str) -> str:
    return key.split("/", 1)[0]


def _documents_by_file(session: Session, collection: Collection, ids: list[str]) -> set[str]:
    """The files that became at least one document."""
    query = select(Document.key).where(Document.collection_id == collection.id, Document.key.like("file-%"))
    wanted = set(ids)
    return {_prefix(key) for key in session.scalars(query) if _prefix(key) in wanted}


def _skips_by_file(session: Session, collection: Collection, ids: list[str]) -> dict[str, str]:
    query = select(SkippedDocument.key, SkippedDocument.reason).where(
        SkippedDocument.collection_id == collection.id, SkippedDocument.key.like("file-%")
    )
    wanted = set(ids)
    return {_prefix(key): reason for key, reason in session.execute(query) if _prefix(key) in wanted}


def _jobs(session: Session, job_ids: list[str]) -> dict[str, Any]:
    if not job_ids:
        return {}
    return {job.id: job for job in session.scalars(select(IngestJob).where(IngestJob.id.in_(set(job_ids))))}


def counts(states: dict[str, FileState]) -> dict[str, int]:
    """OpenAI's ``file_counts`` of a vector store."""
    tally = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0}
    for state in states.values():
        tally[state.status] += 1
    return {**tally, "total": len(states)}
