"""Dynamic batching of concurrent query embeddings.

Embedding one short query with the local model is bound by streaming the model's weights
(~42 MB per query) through the cache, not by arithmetic: 16 queries in one forward pass cost
little more than one. A server under load therefore embeds the queries waiting at that moment
together. A lone query is sent at once (no waiting window), so single-client latency is unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from searchsvc.errors import ProviderResponseError, ShuttingDownError

EmbedMany = Callable[[Sequence[str]], np.ndarray]


class QueryBatcher:
    """One background thread embeds queued queries, taking everything queued (up to ``max_batch``) per pass."""

    def __init__(self, embed_many: EmbedMany, max_batch: int = 32) -> None:
        self._embed_many = embed_many
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future[np.ndarray]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.passes = 0  # forward passes run (for tests and metrics)
        self.queries = 0

    def embed(self, text: str) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        with self._start_lock:
            if self._closed:
                raise ShuttingDownError("the query embedder is closed: the server is shutting down")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="query-batcher", daemon=True)
                self._thread.start()
            self._queue.put((text, future))  # under the lock: never behind close()'s stop signal
        return future.result()

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            thread, self._thread = self._thread, None
            self._queue.put(None)
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._fail_waiting()
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._embed_batch(batch)

    def _embed_batch(self, batch: list[tuple[str, Future[np.ndarray]]]) -> None:
        try:
            vectors = self._embed_many([text for text, _ in batch])
            if len(vectors) != len(batch):
                raise ProviderResponseError(f"{len(vectors)} vectors came back for {len(batch)} queries")
        except BaseException as exc:  # the callers see the error; the thread lives on
            for _, future in batch:
                future.set_exception(exc)
            return
        self.passes += 1
        self.queries += len(batch)
        for (_, future), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)

    def _fail_waiting(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(ShuttingDownError("the query embedder was closed: the server is shutting down"))
