"""A running job's progress, written to its row as the pipeline reports it (at most twice a second), and
the cancellation check: a cancelled job stops at its next report, keeping what it committed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ingest.report import IngestReport
from searchsvc.jobs import repository as jobs
from searchsvc.store import Store

FLUSH_SECONDS = 0.5
log = logging.getLogger("searchsvc.jobs")


class JobCancelled(Exception):
    """Raised inside the pipeline when the job was cancelled (or handed to another runner)."""


class JobInterrupted(Exception):
    """Raised inside the pipeline when this runner stops (its server shuts down): the job is handed back."""


def report_counts(report: IngestReport, done: int) -> dict[str, int | None]:
    """A run's counts as a job keeps them (``done``: documents looked at so far)."""
    return {"documents_done": done, "added": report.added, "changed": report.changed, "renamed": report.renamed,
            "unchanged": report.unchanged, "removed": report.removed, "skipped": len(report.skipped),
            "failed": len(report.failed), "chunks": report.chunks, "chunks_cached": report.chunks_cached,
            "tokens": report.tokens_embedded, "requests": report.embedding_requests}  # fmt: skip


class JobProgress:
    """The pipeline's ``Progress`` for one job: counts from the run's report, kept in SQL."""

    def __init__(self, store: Store, job_id: str, worker: str, stopping: threading.Event) -> None:
        self.store, self.job_id, self.worker, self.stopping = store, job_id, worker, stopping
        self.report = IngestReport("", "", "")  # the run's own, once it starts (watch)
        self.total: int | None = None
        self.done = 0
        self._flushed = 0.0

    def watch(self, report: IngestReport) -> None:
        """Report the counts of this run's report from now on."""
        self.report = report

    def documents(self, total: int | None) -> None:
        self.total = total
        self.flush(force=True)

    def advance(self, documents: int) -> None:
        self.done += documents
        self.flush()

    def embedded(self, chunks: int, tokens: int) -> None:
        self.flush()

    def counts(self) -> dict[str, int | None]:
        return {"documents_total": self.total, **report_counts(self.report, self.done)}

    def flush(self, force: bool = False) -> None:
        if self.stopping.is_set():
            raise JobInterrupted(self.job_id)
        if not force and time.monotonic() - self._flushed < FLUSH_SECONDS:
            return
        self._flushed = time.monotonic()
        with self.store.session() as session:
            stop = jobs.save_progress(session, self.job_id, self.worker, self.counts(), self.report.problems())
        if stop:
            raise JobCancelled(self.job_id)

    def final(self) -> None:
        """The last counts, whatever ended the run (never raises: the job's status matters more)."""
        try:
            with self.store.session() as session:
                jobs.save_progress(session, self.job_id, self.worker, self.counts(), self.report.problems())
        except Exception as exc:
            log.warning("the final counts of job %s were not saved: %s", self.job_id, exc)


class Heartbeat:
    """Proves a job's runner is alive every ``seconds``, even while one long embedding request runs."""

    def __init__(self, beat: Callable[[], None], seconds: float) -> None:
        self._beat, self._seconds = beat, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._beat()
            except Exception as exc:  # retried at the next beat; the job's own writes report lasting failures
                log.warning("job heartbeat failed: %s", exc)
