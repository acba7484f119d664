"""Embedding requests with a bounded number in flight, each committed to SQL as soon as it returns.

Requests are sent only as earlier ones finish, so a kill loses (and a re-run pays again for) at
most the requests in flight at that moment, never a queue of them.

A request the server refuses as too large (HTTP 413, or a 400 about length: ``context_length_exceeded``
and the like; servers count tokens their own way) is split in two and each half sent again; a single
text it still refuses is returned as failed, with the server's reason, and the rest goes on. A request
of several texts that got no answer in time is split the same way, and ``BatchWindow`` keeps the
requests that follow small enough to be answered in time; until an answer comes again, one request is
in flight at a time (the server is likely still computing the one abandoned, and more would queue behind
it). A single text that timed out is sent again, each time allowed twice as long. Any other refusal stops
the run.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np

from ingest.batch_window import BatchWindow
from ingest.batcher import EmbeddingBatch, plan_batches
from searchsvc.errors import ProviderError, ProviderTimeoutError
from searchsvc.providers.base import EmbeddingProvider

log = logging.getLogger("searchsvc.ingest")
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
    on_split: Callable[[EmbeddingBatch, str], None] | None = None,
) -> dict[str, str]:
    """Embed ``hash -> (text, tokens)`` in request-sized batches; ``store_batch`` commits each result.
    Each request first waits for ``pacer`` when there is one (the provider's tokens-per-minute budget).
    ``on_split`` hears of each batch split in two (too large, or timed out) with the reason.
    Returns the texts the server refused on their own (hash -> its reason)."""
    requests = _Requests(provider, store_batch, pacer, on_split)
    return requests.run(plan_batches(pending, provider.limits))


class _Requests:
    """One run's requests: sent as earlier ones finish, each batch split first when it is larger than a
    refused one or than the window (``BatchWindow``) allows."""

    def __init__(
        self,
        provider: EmbeddingProvider,
        store_batch: StoreBatch,
        pacer: Pacer | None,
        on_split: Callable[[EmbeddingBatch, str], None] | None,
    ) -> None:
        self.provider, self.store_batch, self.pacer = provider, store_batch, pacer
        self.on_split = on_split or (lambda batch, reason: None)
        limits = provider.limits
        self.window = BatchWindow(limits.max_inputs_per_request, limits.request_timeout)
        self.failed: dict[str, str] = {}
        self.refused_at: int | None = None  # the fewest tokens of a request refused as too large
        self.in_flight: dict[Future[tuple[np.ndarray, float, float]], EmbeddingBatch] = {}
        self.answered = False
        self.behind = False  # a request timed out and no answer came since: the server is still busy with it
        self.allowed = limits.max_in_flight  # requests the pacer lets be in flight at once
        self.last_done = 0.0  # when the latest answer came (monotonic)

    def run(self, queue: list[EmbeddingBatch]) -> dict[str, str]:
        pool = ThreadPoolExecutor(max_workers=self.provider.limits.max_in_flight)
        try:
            while queue or self.in_flight:
                self._send(queue, pool)
                done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(future, queue)
        except BaseException:
            try:
                _keep_what_was_paid_for(self.in_flight, self.store_batch)
            finally:  # never wait here for requests nobody will use (a second Ctrl-C leaves at once)
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return self.failed

    def _send(self, queue: list[EmbeddingBatch], pool: ThreadPoolExecutor) -> None:
        wanted = self.provider.limits.max_in_flight
        self.allowed = self.pacer.concurrency(wanted, self.answered) if self.pacer else wanted
        # one request at a time until the server answers again after a timeout: more would only queue behind
        # it (the window is still sized for ``allowed``, the concurrency that follows that answer)
        while queue and len(self.in_flight) < (1 if self.behind else self.allowed):
            batch = queue.pop(0)
            if self.refused_at is not None and batch.tokens >= self.refused_at and len(batch.texts) > 1:
                queue[:0] = batch.halves()
                continue
            if not self.window.fits(len(batch.texts)):
                queue[:0] = batch.split_at(self.window.size)
                continue
            if self.pacer is not None:
                self.pacer.acquire(batch.tokens)  # paced to the API's tokens-per-minute limit
            self.in_flight[pool.submit(_timed, self.provider, batch.texts)] = batch

    def _settle(self, future: Future[tuple[np.ndarray, float, float]], queue: list[EmbeddingBatch]) -> None:
        batch = self.in_flight.pop(future)
        error = future.exception()
        self.answered = self.answered or error is None
        self.behind = isinstance(error, ProviderTimeoutError) or (self.behind and error is not None)
        if error is None:
            vectors, started, finished = future.result()
            # The server's time for this request: since it was sent, or since the answer before (a server
            # that embeds one request at a time was busy with that one until then).
            self.window.answered(len(batch.texts), finished - max(started, self.last_done), self.allowed)
            self.last_done = max(self.last_done, finished)
            self.store_batch(batch, vectors)
        elif isinstance(error, ProviderTimeoutError) and len(batch.texts) > 1:
            self.window.timed_out(len(batch.texts))
            self._split(batch, queue, f"no answer in time for {len(batch.texts)} texts")
        elif not too_large(error):
            raise error
        elif len(batch.texts) > 1:
            self.refused_at = min(self.refused_at or batch.tokens, batch.tokens)
            self._split(batch, queue, f"refused as too large ({batch.tokens} tokens)")
        else:
            self.failed[batch.hashes[0]] = f"the embeddings API refused this text ({batch.tokens} tokens): {error}"

    def _split(self, batch: EmbeddingBatch, queue: list[EmbeddingBatch], reason: str) -> None:
        log.warning("embedding batch split in two: %s", reason)
        self.on_split(batch, reason)
        queue[:0] = batch.halves()  # sent again next, in two requests


def _timed(provider: EmbeddingProvider, texts: list[str]) -> tuple[np.ndarray, float, float]:
    """The vectors of ``texts``, and when the request was sent and answered (monotonic)."""
    started = time.monotonic()
    vectors = provider.embed_documents(texts)
    return vectors, started, time.monotonic()


def too_large(error: BaseException) -> bool:
    """Did the server refuse the request for its size (so a smaller one may pass)?"""
    if not isinstance(error, ProviderError) or error.status not in (400, 413):
        return False
    return error.status == 413 or bool(TOO_LARGE.search(f"{error.provider_code or ''} {error}"))


def _keep_what_was_paid_for(
    in_flight: dict[Future[tuple[np.ndarray, float, float]], EmbeddingBatch], store_batch: StoreBatch
) -> None:
    """The run is stopping (an error, or Ctrl-C): requests not yet started are dropped; those the API is
    already answering are paid for, so their vectors are stored if they arrive. A second Ctrl-C stops at once."""
    for future in in_flight:
        future.cancel()
    for future, batch in in_flight.items():
        if future.cancelled():
            continue
        try:
            vectors, _, _ = future.result()
        except Exception:  # that request failed too; the original error is the one to report
            continue
        with contextlib.suppress(Exception):
            store_batch(batch, vectors)
