"""What routes get injected: the services built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from ingest.runs import IngestReport, ingest_records
from searchsvc.api.metrics import Metrics
from searchsvc.api.write_queue import Record, UpsertQueue
from searchsvc.config import Settings
from searchsvc.jobs.ingest_job import run_ingest_job
from searchsvc.jobs.progress import JobProgress
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.providers.health import ProviderProbe
from searchsvc.providers.http_client import OpenAICompatibleClient
from searchsvc.providers.models import ModelCatalog
from searchsvc.providers.usage import UsageSink
from searchsvc.storage.schema import Collection, IngestJob
from searchsvc.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    embedders: EmbedderRegistry
    chat: ChatProvider | None
    upserts: UpsertQueue
    metrics: Metrics | None = None
    probes: dict[str, ProviderProbe] = field(default_factory=dict)
    ledger: UsageSink | None = None  # the token ledger, for calls made outside ingestion and searches
    catalog: ModelCatalog | None = None

    @property
    def models(self) -> ModelCatalog:
        if self.catalog is None:
            self.catalog = ModelCatalog(self.settings.local_model_dir, self.embedders.api_client())
        return self.catalog

    def provider_states(self, collections: list[Collection]) -> dict[str, dict[str, Any]]:
        """Reachability of each API the service needs now: embeddings (if a collection or the default
        uses one) and chat (if answers are generative). Cached probes, never a paid call."""
        clients: dict[str, OpenAICompatibleClient] = {}
        if self.embedders.default_spec()[0] == "openai" or any(c.provider == "openai" for c in collections):
            client = self.embedders.api_client()
            if client is not None:
                clients["embeddings"] = client
        if self.chat is not None:
            clients["chat"] = self.chat.client
        for name, client in clients.items():
            if name not in self.probes:
                self.probes[name] = ProviderProbe(client, self.settings.provider_probe_seconds)
        return {name: self.probes[name].state() for name in clients}

    def embedder_for(self, collection_name: str) -> EmbeddingProvider:
        """The provider that built the collection (never the configured default in its place)."""
        return self.embedders.for_collection(self.store.get_collection(collection_name))

    def ingest(self, collection: str, records: list[Record]) -> IngestReport:
        """One pipeline run for upserted records (called by the upsert queue's writer thread)."""
        embedder = self.embedders.for_existing_or_new(self.store.find_collection(collection))
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

    def run_job(self, job: IngestJob, progress: JobProgress) -> None:
        """Run one ingestion job (called by the job runner's threads)."""
        report = run_ingest_job(self.store, self.embedders, self.settings, job, progress)
        if self.metrics is not None:
            self.metrics.embedding_calls.labels(report.provider).inc(report.embedding_requests)
            self.metrics.embedding_tokens.labels(report.provider).inc(report.tokens_embedded)

    def collection_name(self, requested: str | None) -> str:
        return requested or self.settings.collection


def services(request: Request) -> Services:
    return request.app.state.services


SvcDep = Annotated[Services, Depends(services)]
