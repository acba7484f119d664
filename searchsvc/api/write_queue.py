"""Group commit for HTTP upserts: one writer thread per server, concurrent requests share a run.

Each upsert request waits for its result; the writer takes every queued request for the same
collection (in arrival order, up to a size limit, never two versions of one id in a run) and
ingests them in one pipeline run, so 32 clients writing at once cost a handful of runs and index
saves instead of one each, and never queue on the collection lock against each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.pipeline import IngestReport
from searchsvc.errors import ServiceBusyError, ShuttingDownError

Record = tuple[str, str, str | None, dict[str, Any]]
MAX_RECORDS_PER_RUN = 2000
MAX_QUEUED_RECORDS = 10 * MAX_RECORDS_PER_RUN  # beyond this a request is turned away (503) instead of waiting
RETRY_AFTER_SECONDS = 5.0


@dataclass
class _Job:
    collection: str
    records: list[Record]
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: BaseException | None = None


class UpsertQueue:
    def __init__(
        self, run: Callable[[str, list[Record]], IngestReport], max_queued_records: int = MAX_QUEUED_RECORDS
    ) -> None:
        self._run = run
        self._max_queued = max_queued_records
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="upsert-writer", daemon=True)
        self._thread.start()

    def submit(self, collection: str, records: list[Record], timeout: float = 600.0) -> dict[str, Any]:
        """Queue records and wait for the report of the run that wrote them (this request's counts).

        A full queue turns the request away at once (ServiceBusyError: 503 with Retry-After); so does a
        wait past ``timeout``, after which the records may still be written (upserts are idempotent)."""
        job = _Job(collection, records)
        with self._cond:
            if self._closed:
                raise ShuttingDownError("the server is shutting down: send the upsert again (to another replica)")
            queued = sum(len(j.records) for j in self._jobs)
            if queued and queued + len(records) > self._max_queued:
                raise ServiceBusyError(
                    f"the write queue is full ({queued:,} documents waiting): send the upsert again in a few "
                    "seconds, or send fewer documents per second",
                    RETRY_AFTER_SECONDS,
                )
            self._jobs.append(job)
            self._cond.notify()
        if not job.done.wait(timeout):
            raise ServiceBusyError(
                f"the upsert was not written within {timeout:g} s (the writer is busy); it may still be written: "
                "send it again later (the same documents are not embedded twice)",
                RETRY_AFTER_SECONDS,
            )
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if self._closed and not self._jobs:
                    return
                group = self._take_group()
            self._run_group(group)

    def _take_group(self) -> list[_Job]:
        """The oldest job and the following ones of its collection that fit one run without id clashes."""
        first = self._jobs[0]
        group, ids, size = [], set(), 0
        for job in list(self._jobs):
            if job.collection != first.collection:
                continue
            job_ids = {r[0] for r in job.records}
            if group and (ids & job_ids or size + len(job.records) > MAX_RECORDS_PER_RUN):
                break
            group.append(job)
            ids |= job_ids
            size += len(job.records)
        for job in group:
            self._jobs.remove(job)
        return group

    def _run_group(self, group: list[_Job]) -> None:
        try:
            report = self._run(group[0].collection, [r for job in group for r in job.records])
        except BaseException as exc:  # every waiting request learns what went wrong
            for job in group:
                job.error = exc
                job.done.set()
            return
        shared = report.as_dict()
        for job in group:
            statuses = [report.status.get(r[0], "skipped") for r in job.records]
            job.result = {
                **shared,
                "added": statuses.count("added"),
                "changed": statuses.count("changed"),
                "unchanged": statuses.count("unchanged"),
                "written_with_requests": len(group),
            }
            job.done.set()
