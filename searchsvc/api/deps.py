"""What routes get injected: the services built once at start-up."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ingest.pipeline import IngestReport, ingest_records
from searchsvc.api.metrics import Metrics
from searchsvc.api.write_queue import Record, UpsertQueue
from searchsvc.config import Settings
from searchsvc.errors import NotFoundError
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    embedders: EmbedderRegistry
    chat: ChatProvider | None
    upserts: UpsertQueue
    metrics: Metrics | None = None

    def embedder_for(self, collection_name: str) -> EmbeddingProvider:
        return self.embedders.get(self.store.get_collection(collection_name).embedding_model)

    def ingest(self, collection: str, records: list[Record]) -> IngestReport:
        """One pipeline run for upserted records (called by the upsert queue's writer thread)."""
        embedder = self.embedders.default
        with contextlib.suppress(NotFoundError):  # a new collection is created with the configured model
            embedder = self.embedder_for(collection)
        report = ingest_records(
            self.store,
            embedder,
            collection,
            records,
            chunk_tokens=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
        )
        if self.metrics is not None:
            self.metrics.embedding_calls.labels(embedder.kind).inc(report.embedding_requests)
            self.metrics.embedding_tokens.labels(embedder.kind).inc(report.tokens_embedded)
        return report

    def collection_name(self, requested: str | None) -> str:
        return requested or self.settings.collection


def services(request: Request) -> Services:
    return request.app.state.services


SvcDep = Annotated[Services, Depends(services)]
