"""The embedded job runner: threads of a server that take queued jobs from SQL and run them.

With no broker configured this is where jobs run: nothing to install. Several servers on one database
each run their own runner; a job is claimed by exactly one (``repository.claim_next``), and a job
whose runner went silent is resumed by another."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from searchsvc.config import Settings
from searchsvc.errors import CollectionBusyError, ReadOnlyDatabaseError, SearchsvcError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.progress import Heartbeat, JobCancelled, JobInterrupted, JobProgress
from searchsvc.storage.schema import IngestJob
from searchsvc.store import Store

log = logging.getLogger("searchsvc.jobs")

Execute = Callable[[IngestJob, JobProgress], None]  # runs one job, reporting through the progress
MAX_RETRY_SECONDS = 30.0  # the longest wait between tries while the database fails
CANCELLED = "cancelled; documents committed before it stopped are kept"


def runner_id() -> str:
    """Names this process in a job's ``worker`` field: host, pid, and a nonce (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobRunner:
    """``settings.job_workers`` threads, each running one job at a time."""

    def __init__(self, store: Store, execute: Execute, settings: Settings, poll_seconds: float = 0.5) -> None:
        self.store, self.execute, self.settings, self.poll_seconds = store, execute, settings, poll_seconds
        self.name = runner_id()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(f"{self.name}/{n}",), name=f"job-runner-{n}", daemon=True)
            for n in range(settings.job_workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; running ones are handed back at their next progress report (resumed later)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self, worker: str) -> None:
        failures = 0  # in a row: the wait doubles with each (a database that is down is not polled twice a second)
        while not self._stopping.is_set():
            try:
                ran, failures = self.run_one(worker), 0
            except ReadOnlyDatabaseError:
                log.info("the database is read-only (a standby): this server runs no jobs")
                return
            except Exception as exc:
                ran, failures = False, failures + 1
                self._log_failure(exc, failures)
            if not ran:
                self._stopping.wait(min(self.poll_seconds * 2 ** min(failures, 10), MAX_RETRY_SECONDS))

    @staticmethod
    def _log_failure(exc: Exception, failures: int) -> None:
        """The first failure of a streak with its traceback; the rest in one line, less and less often."""
        if failures == 1:
            log.exception("the job runner failed; trying again")
        elif failures & (failures - 1) == 0:  # 2, 4, 8, ... failures in a row
            log.warning("the job runner failed %d times in a row (%s: %s); still trying", failures,
                        type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip

    def run_one(self, worker: str) -> bool:
        """Resume what stalled, then run the next queued job; False when there was none."""
        with self.store.session() as session:
            jobs.requeue_stale(session, self.settings.job_stale_seconds)
            job = jobs.claim_next(session, worker)
        if job is None:
            return False
        log.info("job started", extra={"fields": {"job": job.id, "collection": job.collection}})
        status, message = self._run(job, worker)
        with self.store.session() as session:
            jobs.finish(session, job.id, worker, status, message)
        log.info("job ended", extra={"fields": {"job": job.id, "status": status, "detail": message}})
        return status != "queued"

    def _run(self, job: IngestJob, worker: str) -> tuple[str, str | None]:
        progress = JobProgress(self.store, job.id, worker, self._stopping)

        def beat() -> None:
            with self.store.session() as session:
                jobs.heartbeat(session, job.id, worker)

        try:
            with Heartbeat(beat, self.settings.job_heartbeat_seconds):
                self.execute(job, progress)
            return "succeeded", None
        except JobCancelled:
            return "cancelled", CANCELLED
        except JobInterrupted:
            return "queued", "its server stopped; resumed by the next runner"
        except CollectionBusyError as exc:
            return "queued", f"waiting: {exc}"
        except SearchsvcError as exc:
            return "failed", str(exc)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            return "failed", f"internal error ({type(exc).__name__}: {exc}); the server log has the details"
        finally:
            progress.final()
