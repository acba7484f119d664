"""Prometheus metrics, one registry per app."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from searchsvc.errors import SearchsvcError
from searchsvc.providers.query_cache import QueryCacheCounts
from searchsvc.storage.usage_ledger import totals
from searchsvc.store import Store

QueryCounts = Callable[[], dict[str, QueryCacheCounts]]


class Metrics:
    def __init__(self, store: Store, query_counts: QueryCounts | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "searchsvc_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "searchsvc_http_request_seconds",
            "HTTP request latency",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.embedding_calls = Counter(
            "searchsvc_embedding_calls", "Embedding requests made", ["provider"], registry=self.registry
        )
        self.embedding_tokens = Counter(
            "searchsvc_embedding_tokens", "Tokens sent for embedding", ["provider"], registry=self.registry
        )
        self.registry.register(_IndexSizeCollector(store))
        if query_counts is not None:
            self.registry.register(_QueryCacheCollector(query_counts))
        self.registry.register(_LedgerCollector(store))


class _LedgerCollector:
    """The token ledger's totals by model and purpose, read from SQL (so they agree with GET /v1/usage and
    count every process on the database), at most every 5 seconds."""

    def __init__(self, store: Store) -> None:
        self.store, self._read_at, self._rows = store, -1e9, []  # type: ignore[var-annotated]

    def collect(self) -> Iterator[CounterMetricFamily]:
        if time.monotonic() - self._read_at > 5:
            with self.store.session() as session:
                self._rows, self._read_at = totals(session), time.monotonic()
        labels = ["model", "purpose"]
        tokens = CounterMetricFamily("searchsvc_usage_tokens", "Tokens in the token ledger", labels=[*labels, "way"])
        requests = CounterMetricFamily("searchsvc_usage_requests", "Requests in the token ledger", labels=labels)
        cost = CounterMetricFamily(
            "searchsvc_usage_cost_usd", "Cost in the token ledger (priced models)", labels=labels
        )
        for model, purpose, inputs, outputs, calls, usd in self._rows:
            tokens.add_metric([model, purpose, "input"], inputs)
            tokens.add_metric([model, purpose, "output"], outputs)
            requests.add_metric([model, purpose], calls)
            cost.add_metric([model, purpose], usd)
        yield from (tokens, requests, cost)


class _QueryCacheCollector:
    """Query vectors by where they came from: the process's LRU, SQL (API models), or the provider."""

    def __init__(self, counts: QueryCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "searchsvc_query_embeddings", "Query vectors by where they came from", labels=["model", "source"]
        )
        for model, counts in self.counts().items():
            family.add_metric([model, "memory"], counts.memory_hits)
            family.add_metric([model, "sql"], counts.shelf_hits)
            family.add_metric([model, "embedded"], counts.misses)
        yield family


class _IndexSizeCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("searchsvc_index_vectors", "Vectors in each loaded index", labels=["collection"])
        for name, index in self.store.loaded_indexes().items():
            with contextlib.suppress(SearchsvcError):  # an index dropped meanwhile (a model switch's old one)
                gauge.add_metric([name], index.count())
        yield gauge
