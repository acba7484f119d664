"""One thread that writes queued rows to SQL in batches, so a request never waits for a write (SQLite has
one writer, which may be an ingestion's). A failed write is logged and dropped: what it writes is a cache
or a record, never the only copy of something a user stored."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Row = TypeVar("Row")
BATCH = 500
QUIET_SECONDS = 60.0  # after a failure is logged, others within this long are only counted (a read-only standby
# refuses every write: one line a minute says so, not one per request)


class BackgroundWriter(Generic[Row]):
    """``put`` queues a row; a daemon thread hands batches to ``write``; ``close`` writes what is queued."""

    def __init__(self, write: Callable[[list[Row]], None], name: str) -> None:
        self._write, self._name = write, name
        self._queue: queue.SimpleQueue[Row | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._logged_at = -QUIET_SECONDS
        self.dropped = 0  # rows not written, in all
        self._logged_at = -QUIET_SECONDS
        self.dropped = 0  # rows not written, in all

    def put(self, row: Row) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(row)

    def close(self) -> None:
        """Write what is queued, then stop (a later ``put`` starts the thread again)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[Row] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= BATCH or self._queue.empty():
                    break
                item = self._queue.get()
            if batch:
                try:
                    self._write(batch)
                except Exception:  # logged (at most once a minute); the next batch tries again
                    self._failed(len(batch))

    def _failed(self, rows: int) -> None:
        self.dropped += rows
        if time.monotonic() - self._logged_at >= QUIET_SECONDS:
            self._logged_at = time.monotonic()
            log.warning("%s: rows not written (%d in all so far; the next minute's failures are not logged)",
                        self._name, self.dropped, exc_info=True)  # fmt: skip
