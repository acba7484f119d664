"""Queue a job: a row in SQL, then (with a broker) a message to the workers; else a server's runner takes it."""

from __future__ import annotations

from typing import Any

from searchsvc.config import Settings
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.view import job_json
from searchsvc.store import Store


def submit_job(store: Store, settings: Settings, collection: str, source: dict[str, Any],
               options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    with store.session() as session:
        job = jobs.create(session, collection, source, options)
        shown = job_json(job)
    if settings.broker_url is not None:
        from searchsvc.jobs.celery_tasks import dispatch  # Celery only with a broker

        try:
            dispatch(settings, job.id)
        except Exception:
            with store.session() as session:
                jobs.discard(session, job.id)  # not sent: no job a runner could wait for forever
            raise
    return shown
