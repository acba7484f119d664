"""Embedding requests with a bounded number in flight, each committed to SQL as soon as it returns.

Requests are sent only as earlier ones finish, so a kill loses (and a re-run pays again for) at
most the requests in flight at that moment, never a queue of them.

A request the server refuses as too large (HTTP 413, or a 400 about length: ``context_length_exceeded``
and the like; servers count tokens their own way) is split in two and each half sent again; a single
text it still refuses is returned as failed, with the server's reason, and the rest goes on. Any other
refusal stops the run, as before.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np

from ingest.batcher import EmbeddingBatch, plan_batches
from searchsvc.errors import ProviderError
from searchsvc.providers.base import EmbeddingProvider

StoreBatch = Callable[[EmbeddingBatch, np.ndarray], None]
TOO_LARGE = re.compile(
    r"context.length|too (many|long|large)|maximum.{0,40}(tokens|length|size)|max_tokens|exceed|input.{0,20}length",
    re.IGNORECASE,
)


class Pacer(Protocol):
    """Paces requests to rate limits: ``acquire`` blocks until ``tokens`` may be sent; ``concurrency`` says how
    many requests may be in flight (fewer while the API's limits are unknown)."""

    def acquire(self, tokens: int) -> float: ...
    def concurrency(self, wanted: int, answered: bool) -> int: ...


def embed_pending(
    provider: EmbeddingProvider,
    pending: dict[str, tuple[str, int]],
    store_batch: StoreBatch,
    pacer: Pacer | None = None,
) -> dict[str, str]:
    """Embed ``hash -> (text, tokens)`` in request-sized batches; ``store_batch`` commits each result.
    Each request first waits for ``pacer`` when there is one (the provider's tokens-per-minute budget).
    Returns the texts the server refused on their own (hash -> its reason)."""
    limits = provider.limits
    queue = plan_batches(pending, limits)
    failed: dict[str, str] = {}
    refused_at: int | None = None  # the fewest tokens of a request refused as too large: larger ones are split first
    in_flight: dict[Future[np.ndarray], EmbeddingBatch] = {}
    pool = ThreadPoolExecutor(max_workers=limits.max_in_flight)
    try:
        answered = False
        while queue or in_flight:
            allowed = pacer.concurrency(limits.max_in_flight, answered) if pacer else limits.max_in_flight
            while queue and len(in_flight) < allowed:
                batch = queue.pop(0)
                if refused_at is not None and batch.tokens >= refused_at and len(batch.texts) > 1:
                    queue[:0] = batch.halves()
                    continue
                if pacer is not None:
                    pacer.acquire(batch.tokens)  # paced to the API's tokens-per-minute limit
                in_flight[pool.submit(provider.embed_documents, batch.texts)] = batch
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch = in_flight.pop(future)
                error = future.exception()
                answered = answered or error is None
                if error is None:
                    store_batch(batch, future.result())
                elif not too_large(error):
                    raise error
                elif len(batch.texts) > 1:
                    queue[:0] = batch.halves()  # sent again next, in two requests
                    refused_at = min(refused_at or batch.tokens, batch.tokens)
                else:
                    failed[batch.hashes[0]] = f"the embeddings API refused this text ({batch.tokens} tokens): {error}"
    except BaseException:
        try:
            _keep_what_was_paid_for(in_flight, store_batch)
        finally:  # never wait here for requests nobody will use (a second Ctrl-C leaves at once)
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return failed


def too_large(error: BaseException) -> bool:
    """Did the server refuse the request for its size (so a smaller one may pass)?"""
    if not isinstance(error, ProviderError) or error.status not in (400, 413):
        return False
    return error.status == 413 or bool(TOO_LARGE.search(f"{error.provider_code or ''} {error}"))


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
