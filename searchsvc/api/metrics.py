"""Prometheus metrics, one registry per app."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from searchsvc.providers.query_cache import QueryCacheCounts
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
            gauge.add_metric([name], index.count())
        yield gauge
