"""Embedding requests with a bounded number in flight, each committed to SQL as soon as it returns.

Requests are sent only as earlier ones finish, so a kill loses (and a re-run pays again for) at
most the requests in flight at that moment, never a queue of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np

from ingest.batcher import EmbeddingBatch, plan_batches
from searchsvc.providers.base import EmbeddingProvider

StoreBatch = Callable[[EmbeddingBatch, np.ndarray], None]


class Pacer(Protocol):
    """Paces requests to a tokens-per-minute limit: ``acquire`` blocks until ``tokens`` may be sent."""

    def acquire(self, tokens: int) -> float: ...


def embed_pending(
    provider: EmbeddingProvider,
    pending: dict[str, tuple[str, int]],
    store_batch: StoreBatch,
    pacer: Pacer | None = None,
) -> None:
    """Embed ``hash -> (text, tokens)`` in request-sized batches; ``store_batch`` commits each result.
    Each request first waits for ``pacer`` when there is one (the provider's tokens-per-minute budget)."""
    limits = provider.limits
    queue = plan_batches(pending, limits)
    in_flight: dict[Future[np.ndarray], EmbeddingBatch] = {}
    pool = ThreadPoolExecutor(max_workers=limits.max_in_flight)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limits.max_in_flight:
                batch = queue.pop(0)
                if pacer is not None:
                    pacer.acquire(batch.tokens)  # paced to the API's tokens-per-minute limit
                in_flight[pool.submit(provider.embed_documents, batch.texts)] = batch
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch = in_flight.pop(future)
                store_batch(batch, future.result())
    except BaseException:
        try:
            _keep_what_was_paid_for(in_flight, store_batch)
        finally:  # never wait here for requests nobody will use (a second Ctrl-C leaves at once)
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _keep_what_was_paid_for(in_flight: dict[Future[np.ndarray], EmbeddingBatch], store_batch: StoreBatch) -> None:
    """The run is stopping (an error, or Ctrl-C): requests not yet started are dropped; those the API is
    already answering are paid for, so their vectors are stored if they arrive. A second Ctrl-C stops at once."""
    for future in in_flight:
        future.cancel()
    for future, batch in in_flight.items():
        if future.cancelled():
            continue
        try:
            vectors = future.result()
        except Exception:  # that request failed too; the original error is the one to report
            continue
        with contextlib.suppress(Exception):
            store_batch(batch, vectors)
