"""The ``ingest_job_batches`` table: a distributed job's documents in batches any worker may take."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from searchsvc.jobs.repository import MAX_SKIPS, now
from searchsvc.storage.schema import IngestJob, IngestJobBatch

SUMMED = ("documents_done", "added", "changed", "renamed", "unchanged", "removed", "skipped", "failed", "chunks",
          "chunks_cached", "tokens", "requests")  # fmt: skip


def plan(session: Session, job_id: str, batches: list[list[str]]) -> None:
    """Record the batches once (a redelivered plan finds them and keeps them)."""
    if session.scalar(select(func.count()).where(IngestJobBatch.job_id == job_id)):
        return
    for number, paths in enumerate(batches):
        session.add(IngestJobBatch(job_id=job_id, number=number, paths=paths, status="pending", attempts=0,
                                   counts={}, skips=[], updated_at=now()))  # fmt: skip
    session.commit()


def pending(session: Session, job_id: str) -> list[int]:
    query = select(IngestJobBatch.number).where(IngestJobBatch.job_id == job_id, IngestJobBatch.status != "done")
    return list(session.scalars(query.order_by(IngestJobBatch.number)))


def take(session: Session, job_id: str, number: int, worker: str, stale_seconds: float) -> IngestJobBatch | str:
    """The batch, now this worker's: when pending, or running by a worker silent for ``stale_seconds`` (it
    died; the broker redelivered its message). Else why not: "done" or "busy" (another worker has it)."""
    silent = now() - timedelta(seconds=stale_seconds)
    free = or_(
        IngestJobBatch.status == "pending", and_(IngestJobBatch.status == "running", IngestJobBatch.updated_at < silent)
    )
    taken = session.execute(
        update(IngestJobBatch)
        .where(IngestJobBatch.job_id == job_id, IngestJobBatch.number == number, free)
        .values(status="running", worker=worker, attempts=IngestJobBatch.attempts + 1, counts={}, updated_at=now())
    )  # a batch taken again starts its counts over
    session.commit()
    batch = session.get(IngestJobBatch, (job_id, number))
    if batch is None or batch.status == "done":
        return "done"
    return batch if taken.rowcount == 1 else "busy"


def touch(session: Session, job_id: str, number: int, worker: str) -> None:
    """A running batch's heartbeat (and its job's)."""
    mine = IngestJobBatch.job_id == job_id, IngestJobBatch.number == number, IngestJobBatch.worker == worker
    session.execute(update(IngestJobBatch).where(*mine, IngestJobBatch.status == "running").values(updated_at=now()))
    session.execute(
        update(IngestJob).where(IngestJob.id == job_id, IngestJob.status == "running").values(heartbeat_at=now())
    )
    session.commit()


def running(session: Session, job_id: str, number: int, worker: str, counts: dict[str, Any]) -> bool:
    """A running batch's counts so far (and its heartbeat); False when it is no longer this worker's."""
    mine = IngestJobBatch.job_id == job_id, IngestJobBatch.number == number, IngestJobBatch.worker == worker
    updated = session.execute(
        update(IngestJobBatch).where(*mine, IngestJobBatch.status == "running").values(counts=counts, updated_at=now())
    )
    session.commit()
    return updated.rowcount == 1


def done(session: Session, job_id: str, number: int, counts: dict[str, Any], skips: list[dict[str, str]]) -> None:
    session.execute(
        update(IngestJobBatch)
        .where(IngestJobBatch.job_id == job_id, IngestJobBatch.number == number)
        .values(status="done", counts=counts, skips=skips[:MAX_SKIPS], updated_at=now())
    )
    session.commit()


def summarise(session: Session, job_id: str) -> None:
    """The job's counts and skips: the sums of its batches, finished and (so far) running; the total is kept."""
    rows = session.execute(
        select(IngestJobBatch.counts, IngestJobBatch.skips).where(
            IngestJobBatch.job_id == job_id, IngestJobBatch.status.in_(("done", "running"))
        )
    )
    totals: Counter[str] = Counter()
    skips: list[dict[str, Any]] = []
    for counts, batch_skips in rows:
        totals.update({key: int(counts.get(key) or 0) for key in SUMMED})
        skips.extend(batch_skips)
    job = session.get(IngestJob, job_id)
    if job is not None:
        total = (job.counts or {}).get("documents_total")
        session.execute(update(IngestJob).where(IngestJob.id == job_id).values(
            counts={"documents_total": total, **totals}, skips=skips[:MAX_SKIPS], heartbeat_at=now()))  # fmt: skip
        session.commit()


def planned_paths(session: Session, job_id: str) -> list[list[str]]:
    query = select(IngestJobBatch.paths).where(IngestJobBatch.job_id == job_id).order_by(IngestJobBatch.number)
    return [list(paths) for paths in session.scalars(query)]


def stalled(session: Session, stale_seconds: float) -> list[tuple[str, int]]:
    """(job, batch) not done, of running jobs silent for ``stale_seconds``, whose batch is pending or silent too."""
    cutoff = now() - timedelta(seconds=stale_seconds)
    silent_job = IngestJob.status == "running", IngestJob.heartbeat_at < cutoff
    waiting = or_(
        IngestJobBatch.status == "pending", and_(IngestJobBatch.status == "running", IngestJobBatch.updated_at < cutoff)
    )
    query = select(IngestJobBatch.job_id, IngestJobBatch.number).join(IngestJob, IngestJob.id == IngestJobBatch.job_id)
    found = [(job_id, number) for job_id, number in session.execute(query.where(*silent_job, waiting))]
    # every batch done but the job never finished (its last worker died between the two): any batch's message
    # finishes it (the batch is found done, and the job with nothing left)
    unfinished = func.sum(case((IngestJobBatch.status != "done", 1), else_=0))
    all_done = select(IngestJobBatch.job_id).group_by(IngestJobBatch.job_id).having(unfinished == 0)
    finished = session.scalars(select(IngestJob.id).where(*silent_job, IngestJob.id.in_(all_done)))
    return found + [(job_id, 0) for job_id in finished]
