"""Request and response models of the ingestion jobs API (``/v1/ingest-jobs``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from searchsvc.api.responses import UtcDatetime
from searchsvc.api.schemas import NAME_PATTERN, DocumentIn, Strict

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobSource(Strict):
    path: str | None = Field(
        None, min_length=1, max_length=4096, description="A folder, .jsonl file or document on the server."
    )
    file_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] | None = Field(
        None, min_length=1, max_length=2000, description="Uploaded files (Files API)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> JobSource:
        if (self.path is None) == (self.file_ids is None):
            raise ValueError('give exactly one of "path" and "file_ids"')
        return self


class IngestJobBody(Strict):
    collection: str = Field(pattern=NAME_PATTERN, description="Collection to ingest into (created if new).")
    source: JobSource
    prune: bool = Field(False, description="Delete documents of this source that are no longer present.")
    include: list[str] | None = Field(None, max_length=100, description="Globs of relative paths to include.")
    exclude: list[str] | None = Field(None, max_length=100, description="Globs of relative paths to exclude.")


class JobDocuments(BaseModel):
    total: int | None = Field(description="Documents found (null until counted).")
    done: int
    added: int
    changed: int
    renamed: int = Field(0, description="Files found under a new name or folder: their documents moved with them.")
    unchanged: int
    removed: int
    skipped: int
    failed: int


class JobSkip(BaseModel):
    path: str
    reason: str


class IngestJobOut(BaseModel):
    id: str
    object: Literal["ingest_job"]
    collection: str
    source: dict[str, Any]
    options: dict[str, Any]
    status: JobStatus
    message: str | None = Field(description="Why it failed, was cancelled or handed back; null otherwise.")
    cancel_requested: bool
    attempts: int = Field(description="Runs started (a job whose runner died is resumed, at most 3 times).")
    worker: str | None = Field(description="host:pid of the runner that has (or last had) it.")
    documents: JobDocuments
    chunks: int
    chunks_cached: int = Field(description="Chunks whose vectors came from the embedding cache.")
    tokens: int = Field(description="Tokens embedded (paid for) by this job.")
    requests: int = Field(description="Embedding requests sent.")
    skips: list[JobSkip] = Field(description="Each skipped document with its reason (the first 500).")
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    heartbeat_at: UtcDatetime | None = Field(description="When its runner last proved it was alive.")
    elapsed_seconds: float | None
    eta_seconds: float | None = Field(description="Estimated time left at the pace so far (null: not known yet).")


class IngestJobList(BaseModel):
    object: Literal["list"]
    data: list[IngestJobOut]


class EstimateBody(Strict):
    collection: str = Field(pattern=NAME_PATTERN, description="The collection the documents would go into.")
    records: list[DocumentIn] | None = Field(
        None, min_length=1, max_length=1000, description="Records as POST .../documents takes them."
    )
    file_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] | None = Field(
        None, min_length=1, max_length=2000, description="Uploaded files (Files API)."
    )
    path: str | None = Field(
        None, min_length=1, max_length=4096, description="A folder, .jsonl file or document on the server."
    )
    models: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        None, min_length=1, max_length=10, description="Models to estimate; default: the collection's (or a new one's)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> EstimateBody:
        if sum(x is not None for x in (self.records, self.file_ids, self.path)) != 1:
            raise ValueError('give exactly one of "records", "file_ids" and "path"')
        return self


class DocumentCounts(BaseModel):
    added: int
    changed: int
    renamed: int
    unchanged: int
    skipped: int


class ModelEstimateOut(BaseModel):
    model: str
    provider: str
    documents: DocumentCounts = Field(description="What a run would do with each document.")
    chunks: int = Field(description="Chunks of the documents to embed, cut with this model's tokenizer.")
    chunks_cached: int = Field(description="Of those, chunks whose text this model has embedded before: free.")
    tokens: int = Field(description="Tokens to embed (cached texts excluded).")
    requests: int
    pages: float = Field(description="tokens / tokens_per_page")
    price_per_million_tokens: float | None = Field(description="USD (SEARCHSVC_EMBEDDING_PRICES); null: unknown.")
    cost_usd: float | None
    minutes_at_rate_limit: float | None = Field(description="At SEARCHSVC_TOKENS_PER_MINUTE; null: no limit set.")
    note: str | None


class EstimateOut(BaseModel):
    object: Literal["ingest_estimate"] = "ingest_estimate"
    collection: str
    path: str | None = None
    tokens_per_page: int
    models: list[ModelEstimateOut]
