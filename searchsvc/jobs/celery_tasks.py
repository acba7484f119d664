"""Celery: the broker carries job ids and batch numbers; SQL carries everything else.

Messages are acknowledged after the task ends (``acks_late``) and given back when a worker dies
(``reject_on_worker_lost``; RabbitMQ and Redis redeliver what a lost connection held), one at a time
per worker thread (prefetch 1), so a SIGKILLed worker's batch is taken by another. Tasks are
idempotent (``searchsvc.jobs.distributed``), so a redelivery costs only the requests in flight at the
kill. Celery is imported here only: without a broker nothing needs it."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from typing import Any

from searchsvc.config import Settings
from searchsvc.errors import ConfigError, SearchsvcError, ServiceBusyError
from searchsvc.jobs import batches
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.distributed import (
    BatchBusy,
    discard_created_collection,
    finish_job,
    plan_job,
    run_batch,
    stalled_batches,
)
from searchsvc.jobs.progress import Heartbeat, JobCancelled
from searchsvc.jobs.runner import CANCELLED, runner_id
from searchsvc.providers import EmbedderRegistry
from searchsvc.store import Store

PLAN, BATCH = "searchsvc.plan", "searchsvc.batch"
log = logging.getLogger("searchsvc.jobs")


def make_celery(settings: Settings) -> Any:
    try:
        from celery import Celery
    except ImportError:  # pragma: no cover - the workers extra is missing
        raise ConfigError("SEARCHSVC_BROKER_URL needs Celery: pip install 'searchsvc[workers]'") from None
    app = Celery("searchsvc", broker=broker_url(settings))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.job_queue,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},  # Redis: redeliver an unacknowledged batch after 1 h
        worker_hijack_root_logger=False,
    )
    return app


@functools.cache
def _sender(broker: str, queue: str) -> Any:
    """One Celery app (and connection pool) per broker and queue for sending, kept for the process."""
    return make_celery(Settings(broker_url=broker, job_queue=queue))


def dispatch(settings: Settings, job_id: str) -> None:
    """Send a new job to the workers; an unreachable broker is a clear 503 (the job is not kept)."""
    app = _sender(broker_url(settings), settings.job_queue)
    try:
        app.send_task(PLAN, args=[job_id], retry=True, retry_policy={"max_retries": 2, "interval_start": 0.5})
    except Exception as exc:
        raise ServiceBusyError(f"the job broker is unreachable ({exc}); start it and send the job again") from exc


def broker_url(settings: Settings) -> str:
    if settings.broker_url is None:
        raise ConfigError("no SEARCHSVC_BROKER_URL: jobs run in the server itself")
    return settings.broker_url.get_secret_value()


class WorkerTasks:
    """The two tasks, bound to one worker process's store, providers and settings."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.store = Store(settings)
        self.embedders = EmbedderRegistry(settings)
        self.name = runner_id()

        @app.task(name=PLAN)
        def plan(job_id: str) -> None:
            self.plan(job_id)

        @app.task(name=BATCH, bind=True, max_retries=None)
        def batch(task: Any, job_id: str, number: int) -> None:
            self.batch(task, job_id, number)

    def plan(self, job_id: str) -> None:
        def beat() -> None:
            with self.store.session() as session:
                jobs.touch_plan(session, job_id, self.name)

        try:
            with Heartbeat(beat, self.settings.job_heartbeat_seconds):  # listing a large folder takes a while
                numbers = plan_job(self.store, self.embedders, self.settings, job_id, self.name)
        except JobCancelled:
            self._end(job_id, "cancelled", CANCELLED)
            return
        except Exception as exc:
            self._failed(job_id, "planning", exc)
            return
        self.send_batches([(job_id, number) for number in numbers])  # a failure here: the watchdog resends

    def send_batches(self, found: list[tuple[str, int]]) -> None:
        for job_id, number in found:
            self.app.send_task(BATCH, args=[job_id, number])

    def watch(self, stopping: threading.Event) -> None:
        """Every ``job_stale_seconds``: send again the batches of jobs nobody has worked on for that long, and
        the plans of jobs queued that long (both idempotent: a message that was not lost is a no-op twice)."""
        while not stopping.wait(self.settings.job_stale_seconds):
            try:
                self.send_batches(stalled_batches(self.store, self.settings))
                with self.store.session() as session:
                    for job_id in jobs.silent_queued(session, self.settings.job_stale_seconds):
                        self.app.send_task(PLAN, args=[job_id])
            except Exception as exc:  # the broker or the database is away: the next period tries again
                log.warning("the job watchdog could not resend stalled batches: %s", exc)

    def batch(self, task: Any, job_id: str, number: int) -> None:
        def beat() -> None:
            with self.store.session() as session:
                batches.touch(session, job_id, number, self.name)

        try:
            with Heartbeat(beat, self.settings.job_heartbeat_seconds):
                last = run_batch(self.store, self.embedders, self.settings, job_id, number, self.name)
            if last:
                finish_job(self.store, self.embedders, self.settings, job_id, self.name)
        except BatchBusy:
            raise task.retry(countdown=self.settings.job_stale_seconds) from None
        except JobCancelled:
            self._end(job_id, "cancelled", CANCELLED)
        except Exception as exc:  # acknowledged either way: the job must say why it stopped
            self._failed(job_id, f"batch {number}", exc)

    def _failed(self, job_id: str, step: str, exc: Exception) -> None:
        if not isinstance(exc, SearchsvcError):
            log.exception("job %s failed in %s", job_id, step)
        reason = str(exc) if isinstance(exc, SearchsvcError) else f"internal error ({type(exc).__name__}: {exc})"
        self._end(job_id, "failed", f"{step}: {reason}")

    def _end(self, job_id: str, status: str, message: str) -> None:
        with self.store.session() as session:
            batches.summarise(session, job_id)
            jobs.finish(session, job_id, None, status, message)
        discard_created_collection(self.store, job_id)  # a first job that stored nothing leaves no collection

    def close(self) -> None:
        self.embedders.close()
        self.store.close()


def run_worker(settings: Settings, concurrency: int) -> None:
    """A Celery worker in this process: ``concurrency`` threads, each taking one batch at a time."""
    app = make_celery(settings)
    tasks = WorkerTasks(app, settings)
    stopping = threading.Event()
    threading.Thread(target=tasks.watch, args=(stopping,), name="job-watchdog", daemon=True).start()
    try:
        app.worker_main(["worker", "--pool", "threads", "--concurrency", str(concurrency),
                         "--queues", settings.job_queue, "--hostname", f"searchsvc-{tasks.name}@{socket.gethostname()}",
                         "--loglevel", "INFO", "--without-gossip", "--without-mingle"])  # fmt: skip
    finally:
        stopping.set()
        tasks.close()
