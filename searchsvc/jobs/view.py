"""A job as the API and the CLI show it: counts, times, and an estimate of the time left."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from searchsvc.storage.schema import IngestJob

DOCUMENT_COUNTS = ("total", "done", "added", "changed", "renamed", "unchanged", "removed", "skipped", "failed")


def job_json(job: IngestJob, at: datetime | None = None) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    counts = job.counts or {}
    documents = {name: counts.get(name, 0) for name in DOCUMENT_COUNTS[2:]}
    documents = {"total": counts.get("documents_total"), "done": counts.get("documents_done", 0), **documents}
    started, finished = _aware(job.started_at), _aware(job.finished_at)
    elapsed = ((finished or at) - started).total_seconds() if started else None
    return {
        "id": job.id,
        "object": "ingest_job",
        "collection": job.collection,
        "source": job.source,
        "options": {k: v for k, v in (job.options or {}).items() if not k.startswith("_")},  # "_": internal
        "status": job.status,
        "message": job.message,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "worker": job.worker,
        "documents": documents,
        "chunks": counts.get("chunks", 0),
        "chunks_cached": counts.get("chunks_cached", 0),
        "tokens": counts.get("tokens", 0),
        "requests": counts.get("requests", 0),
        "skips": job.skips or [],
        "created_at": _aware(job.created_at),
        "started_at": started,
        "finished_at": finished,
        "heartbeat_at": _aware(job.heartbeat_at),
        "elapsed_seconds": None if elapsed is None else round(elapsed, 1),
        "eta_seconds": _eta(job.status, documents, elapsed),
    }


def _eta(status: str, documents: dict[str, Any], elapsed: float | None) -> float | None:
    """Time left at the pace so far; None while nothing is done or the total is unknown."""
    total, done = documents["total"], documents["done"]
    if status != "running" or not total or not done or elapsed is None:
        return 0.0 if status in ("succeeded", "failed", "cancelled") else None
    return round(elapsed * max(total - done, 0) / done, 1)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
