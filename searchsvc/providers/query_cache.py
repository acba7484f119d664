"""Query vectors remembered by (model, text): repeated queries do not pay again.

Two levels: an in-process LRU per model (every provider), then, for API models, a shelf kept in SQL
that every process on the database reads (``searchsvc.storage.query_vectors``). A query found on the
shelf goes into the LRU. The shelf is written in the background, so a search never waits for a write.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.rate_limits import LearnedLimits
from searchsvc.providers.usage import CURRENT_COLLECTION, Usage, UsageSink


class VectorShelf(Protocol):
    """Query vectors kept beyond this process (SQL)."""

    def get(self, model: str, text_hash: str) -> np.ndarray | None: ...
    def put(self, model: str, text_hash: str, vector: np.ndarray) -> None: ...
    def close(self) -> None: ...


@dataclass
class QueryCacheCounts:
    memory_hits: int = 0
    shelf_hits: int = 0
    misses: int = 0  # embedded by the provider (paid, for an API model)


def query_hash(text: str) -> str:
    """The key of a query's vector: its own namespace, apart from the hashes of documents' embedded texts."""
    return hashlib.sha256(b"query\0" + text.encode("utf-8", "surrogatepass")).hexdigest()


class CachedQueries(EmbeddingProvider):
    """``inner`` with its query vectors remembered; documents are embedded by ``inner`` as they come."""

    def __init__(
        self, inner: EmbeddingProvider, size: int, shelf: VectorShelf | None = None, ledger: UsageSink | None = None
    ) -> None:
        self.inner, self.size, self.shelf, self.ledger = inner, size, shelf, ledger
        self.kind, self.model, self.limits, self.tokenizer = inner.kind, inner.model, inner.limits, inner.tokenizer
        self.prompts = inner.prompts
        self.counts = QueryCacheCounts()
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int | None:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        key = query_hash(text)
        with self._lock:
            vector = self._memory.get(key)
            if vector is not None:
                self._memory.move_to_end(key)
                self.counts.memory_hits += 1
                return vector.copy()  # a caller may normalise its vector in place
        vector = self.shelf.get(self.vectors_key, key) if self.shelf is not None else None
        found = vector is not None and vector.shape[0] == (self.inner.dimension or vector.shape[0])
        if not found:
            vector = self.inner.embed_query(text)
            if self.shelf is not None:
                self.shelf.put(self.vectors_key, key, vector)
            if self.ledger is not None:
                tokens = self.tokenizer.count([text])[0]
                self.ledger.record(
                    Usage(self.kind, self.model, "query", CURRENT_COLLECTION.get(), tokens, estimated=True)
                )
        assert vector is not None
        self._remember(key, vector, found)
        return vector

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """A calibration's probes: embedded as queries, not remembered, recorded in the ledger as such."""
        vectors = self.inner.embed_queries(texts)
        if self.ledger is not None:
            tokens = sum(self.tokenizer.count(list(texts)))
            self.ledger.record(
                Usage(self.kind, self.model, "calibrate", CURRENT_COLLECTION.get(), tokens, estimated=True)
            )
        return vectors

    def _remember(self, key: str, vector: np.ndarray, from_shelf: bool) -> None:
        with self._lock:
            if from_shelf:
                self.counts.shelf_hits += 1
            else:
                self.counts.misses += 1
            if self.size > 0:
                self._memory[key] = vector.copy()
                self._memory.move_to_end(key)
                while len(self._memory) > self.size:
                    self._memory.popitem(last=False)

    def describe(self) -> str:
        return self.inner.describe()

    def rate_limits(self) -> LearnedLimits | None:
        return self.inner.rate_limits()

    def on_throttled(self, callback: Callable[[float], None]) -> None:
        self.inner.on_throttled(callback)

    def close(self) -> None:
        self.inner.close()
