"""The ``ingest_jobs`` table: create, claim, report progress, finish, cancel. Every write by a runner is
guarded by its worker id and the running status, so a runner that was presumed dead (and whose job
was handed to another) cannot overwrite what the new one writes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from searchsvc.errors import NotFoundError
from searchsvc.storage.schema import IngestJob

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", *TERMINAL)
MAX_ATTEMPTS = 3  # a job whose runner died this many times is failed, not resumed again
MAX_SKIPS = 500  # skip and failure reasons kept per job (the counts stay exact)
HANDBACK_SECONDS = 5.0  # a job handed back (its collection busy, its server stopping) waits this long


def now() -> datetime:
    return datetime.now(UTC)


def create(session: Session, collection: str, source: dict[str, Any], options: dict[str, Any]) -> IngestJob:
    job = IngestJob(
        id=f"job_{secrets.token_hex(12)}",
        collection=collection,
        source=source,
        options=options,
        status="queued",
        attempts=0,
        counts={},
        skips=[],
        cancel_requested=False,
        created_at=now(),
    )
    session.add(job)
    session.commit()
    return job


def discard(session: Session, job_id: str) -> None:
    """Forget a job that never started (its broker refused it)."""
    session.execute(delete(IngestJob).where(IngestJob.id == job_id, IngestJob.status == "queued"))
    session.commit()


def get(session: Session, job_id: str) -> IngestJob:
    job = session.get(IngestJob, job_id)
    if job is None:
        raise NotFoundError(f"no ingestion job {job_id!r}; `searchsvc jobs` lists them")
    return job


def listed(session: Session, status: str | None, collection: str | None, limit: int) -> list[IngestJob]:
    query = select(IngestJob).order_by(IngestJob.created_at.desc(), IngestJob.id).limit(limit)
    if status is not None:
        query = query.where(IngestJob.status == status)
    if collection is not None:
        query = query.where(IngestJob.collection == collection)
    return list(session.scalars(query))


def claim_next(session: Session, worker: str) -> IngestJob | None:
    """Take the oldest queued job whose collection no other job is writing; None when there is none.
    Atomic across processes: the update only succeeds while the job is still queued."""
    running = aliased(IngestJob)
    busy = exists().where(running.collection == IngestJob.collection, running.status == "running")
    rested = or_(IngestJob.heartbeat_at.is_(None), IngestJob.heartbeat_at < now() - timedelta(seconds=HANDBACK_SECONDS))
    ready = IngestJob.status == "queued", ~IngestJob.cancel_requested, rested, ~busy
    candidates = session.scalars(select(IngestJob.id).where(*ready).order_by(IngestJob.created_at).limit(5)).all()
    for job_id in candidates:
        claimed = session.execute(
            update(IngestJob)
            .where(IngestJob.id == job_id, IngestJob.status == "queued")
            .values(
                status="running",
                worker=worker,
                attempts=IngestJob.attempts + 1,
                heartbeat_at=now(),
                started_at=now(),
                message=None,
            )
        )
        session.commit()
        if claimed.rowcount == 1:
            return get(session, job_id)
    return None


def requeue_stale(session: Session, stale_seconds: float) -> int:
    """Running jobs whose runner has been silent for ``stale_seconds``: queued again to be resumed, or
    failed after MAX_ATTEMPTS. Returns how many were touched."""
    cutoff = now() - timedelta(seconds=stale_seconds)
    stale = session.scalars(
        select(IngestJob).where(IngestJob.status == "running", IngestJob.heartbeat_at < cutoff)
    ).all()
    for job in stale:
        silent = f"its runner ({job.worker}) stopped heartbeating"
        if job.cancel_requested:
            values: dict[str, Any] = {"status": "cancelled", "finished_at": now(), "message": silent}
        elif job.attempts >= MAX_ATTEMPTS:
            values = {"status": "failed", "finished_at": now(), "message": f"{silent} {job.attempts} times"}
        else:
            values = {"status": "queued", "message": f"{silent}; resumed by the next runner"}
        session.execute(update(IngestJob).where(IngestJob.id == job.id, IngestJob.status == "running").values(**values))
    session.commit()
    return len(stale)


def save_progress(session: Session, job_id: str, worker: str, counts: dict[str, Any], skips: list) -> bool:  # type: ignore[type-arg]
    """Record counts and heartbeat; True when the job should stop (cancelled, or no longer this runner's)."""
    updated = session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.worker == worker, IngestJob.status == "running")
        .values(counts=counts, skips=skips[:MAX_SKIPS], heartbeat_at=now())
    )
    session.commit()
    if updated.rowcount != 1:
        return True
    return bool(session.scalar(select(IngestJob.cancel_requested).where(IngestJob.id == job_id)))


def heartbeat(session: Session, job_id: str, worker: str) -> None:
    session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.worker == worker, IngestJob.status == "running")
        .values(heartbeat_at=now())
    )
    session.commit()


def finish(session: Session, job_id: str, worker: str | None, status: str, message: str | None = None) -> None:
    """End a running job, or hand it back (status ``queued``: tried again after HANDBACK_SECONDS). ``worker``
    None: a distributed job, which any worker may end, planned (running) or not (queued)."""
    values: dict[str, Any] = {"status": status, "message": message}
    if status in TERMINAL:
        values["finished_at"] = now()
    else:  # handed back by its runner (stopping, or the collection busy): not an attempt that died
        values["attempts"] = IngestJob.attempts - 1
        values["heartbeat_at"] = now()  # claim_next waits HANDBACK_SECONDS from here: other jobs go first
    if worker is None:
        where = IngestJob.id == job_id, IngestJob.status.in_(("queued", "running"))
    else:
        where = IngestJob.id == job_id, IngestJob.worker == worker, IngestJob.status == "running"
    session.execute(update(IngestJob).where(*where).values(**values))
    session.commit()


def start_distributed(session: Session, job_id: str, worker: str, total: int | None) -> None:
    """A distributed job's plan is made: it runs (by every worker that takes a batch), ``total`` documents."""
    session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status == "queued")  # a redelivered plan keeps the counts
        .values(
            status="running",
            worker=worker,
            started_at=now(),
            heartbeat_at=now(),
            counts={"documents_total": total},
            attempts=IngestJob.attempts + 1,
        )
    )
    session.commit()


def touch(session: Session, job_id: str) -> None:
    """A distributed job's heartbeat: some worker is working on it."""
    session.execute(
        update(IngestJob).where(IngestJob.id == job_id, IngestJob.status == "running").values(heartbeat_at=now())
    )
    session.commit()


def claim_plan(session: Session, job_id: str, worker: str) -> bool:
    """A distributed job's planning, by one worker at a time: a duplicate plan message finds it taken."""
    free = IngestJob.id == job_id, IngestJob.status == "queued", IngestJob.worker.is_(None)
    taken = session.execute(update(IngestJob).where(*free).values(worker=worker, heartbeat_at=now()))
    session.commit()
    return taken.rowcount == 1


def touch_plan(session: Session, job_id: str, worker: str) -> None:
    """The planner's heartbeat: a job being planned is not resent."""
    mine = IngestJob.id == job_id, IngestJob.status == "queued", IngestJob.worker == worker
    session.execute(update(IngestJob).where(*mine).values(heartbeat_at=now()))
    session.commit()


def silent_queued(session: Session, stale_seconds: float) -> list[str]:
    """Queued jobs untouched for ``stale_seconds``: with a broker, their plan message may be lost (a broker
    restarted without persistence) or their planner died. Released (no planner) and touched in one
    statement, so of several watchdogs one resends each, once per period at most."""
    cutoff = now() - timedelta(seconds=stale_seconds)
    last = func.coalesce(IngestJob.heartbeat_at, IngestJob.created_at)
    silent = IngestJob.status == "queued", ~IngestJob.cancel_requested, last < cutoff
    statement = update(IngestJob).where(*silent).values(heartbeat_at=now(), worker=None).returning(IngestJob.id)
    found = list(session.execute(statement.execution_options(synchronize_session=False)).scalars())
    session.commit()
    return found


def request_cancel(session: Session, job_id: str) -> IngestJob:
    """Cancel: a queued job at once; a running one at its next progress report; a finished one stays.
    The flag is set first, so a runner claiming the job at this moment sees it."""
    get(session, job_id)
    live = IngestJob.id == job_id, IngestJob.status.in_(("queued", "running"))
    session.execute(update(IngestJob).where(*live).values(cancel_requested=True))
    session.execute(
        update(IngestJob)
        .where(IngestJob.id == job_id, IngestJob.status == "queued")
        .values(status="cancelled", finished_at=now(), message="cancelled before it started")
    )
    session.commit()
    session.expire_all()
    return get(session, job_id)
