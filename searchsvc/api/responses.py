"""Response models: what every route returns, so /openapi.json (and schemathesis) know the shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field


def _as_utc(value: datetime) -> datetime:
    # Times are stored in UTC; SQLite gives them back without a zone, which is not an RFC 3339 date-time.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: not_found, invalid_request, provider_unavailable...")
    message: str = Field(description="What failed and what to do next.")
    type: str = Field(description="OpenAI's error type: invalid_request_error, authentication_error, server_error...")
    param: str | None = Field(None, description="The request field at fault, when one is.")
    details: list[dict[str, Any]] | None = Field(None, description="Per-field problems of a refused request.")


class ErrorOut(BaseModel):
    error: ErrorDetail


# Every route may answer with these; each carries the one JSON error shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "The request cannot be served as sent (the message says why)."},
    "5XX": {"model": ErrorOut, "description": "A provider or the store failed; Retry-After when it is worth it."},
}


# One server-sent event of a streamed answer (OpenAPI 3.1: the schema of an event stream is that of an event).
ANSWER_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["sources", "delta", "done", "error", "tool_call", "tool_result"]},
        "data": {"type": "string", "contentMediaType": "application/json", "description": "The event's JSON."},
    },
}


class Status(BaseModel):
    status: str


class ProviderState(BaseModel):
    base_url: str
    reachable: bool
    problem: str | None
    checked_seconds_ago: float


class Readiness(BaseModel):
    status: str = Field(description="'ready' or 'not ready'.")
    indexes: dict[str, int] | None = Field(None, description="Vectors loaded per collection.")
    providers: dict[str, ProviderState] | None = None
    unreachable: list[str] | None = None
    error: str | None = Field(None, description="Why readiness could not be checked.")


class CollectionOut(BaseModel):
    name: str
    provider: str = Field(description="'local' or 'openai' (any OpenAI-compatible API).")
    embedding_model: str
    dimension: int | None = Field(description="Vector size; null until the first document is embedded.")
    index_type: str = Field(description="Requested: auto, flat or hnsw.")
    index_in_use: str | None = Field(description="The index type currently built, if any.")
    documents: int
    chunks: int
    created_at: UtcDatetime


class CollectionHealthOut(BaseModel):
    collection: str
    chunks: int
    vectors: int | None = Field(description="Vectors in the index; null when there is no index yet.")
    problems: list[str] = Field(description="Each disagreement between SQL and the index, in plain words.")
    repaired: list[str]
    ok: bool


class AccessOut(BaseModel):
    keys_required: bool = Field(description="Whether this server needs an API key on its /v1 routes.")
    scope: Literal["rw", "ro"] = Field(description="What the key sent may do: read and write, or read only.")


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class Deleted(BaseModel):
    deleted: str


class DocumentDeleted(Deleted):
    chunks_removed: int


class DocumentFields(BaseModel):
    id: str
    title: str | None
    path: str | None
    source: str = Field(description="The ingest source (folder, file or 'api') the document came from.")
    metadata: dict[str, Any]
    content_hash: str
    tokens: int
    updated_at: UtcDatetime


class DocumentOut(DocumentFields):
    chunks: int


class Span(BaseModel):
    """Where a chunk sits in its document: headings above it, characters, lines (text) or page (PDF)."""

    heading_path: list[str]
    start_char: int
    end_char: int
    line_start: int | None
    line_end: int | None
    page: int | None


class ChunkOut(Span):
    chunk_id: int
    ordinal: int
    text: str
    tokens: int


class DocumentDetail(DocumentFields):
    chunks: list[ChunkOut]


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    total: int
    offset: int
    limit: int


class SkippedFile(BaseModel):
    path: str
    reason: str


class UpsertOut(BaseModel):
    collection: str
    provider: str
    model: str
    added: int = Field(description="This request's documents that were new.")
    changed: int
    unchanged: int
    removed: int
    skipped_before: int
    chunks: int
    chunks_cached: int
    tokens_embedded: int
    embedding_requests: int
    seconds: float
    skipped: list[SkippedFile]
    written_with_requests: int = Field(description="Requests written together with this one (group commit).")


class ChunkPlace(Span):
    """Which chunk, of which document, and where in it."""

    chunk_id: int
    document_id: int
    document_key: str
    title: str | None
    path: str | None


class HitFields(ChunkPlace):
    score: float
    text: str
    vector_score: float | None


class SearchHitOut(HitFields):
    metadata: dict[str, Any]
    keyword_score: float | None
    location: str


class SearchOut(BaseModel):
    collection: str
    mode: str
    results: list[SearchHitOut]
    timings_ms: dict[str, float]


class AnswerSourceOut(HitFields):
    number: int


class CitationOut(ChunkPlace):
    number: int
    location: str
    quote: str = Field(description="The sentence of the source that supports the claim, verbatim.")


SUBSTITUTED = (
    "Set when the chat server answered with another model than asked (a proxy or llama.cpp serving what it "
    "loaded): `requested` and `answered`. A dated snapshot of the model asked for (gpt-4o-mini-2024-07-18), a "
    "provider prefix or another case is the same model, and not reported."
)


class ModelSubstitutedOut(BaseModel):
    requested: str = Field(description="The chat model searchsvc asked for.")
    answered: str = Field(description="The model the server's response names.")


class ModelAnswerOut(BaseModel):
    model: str | None = None
    model_substituted: ModelSubstitutedOut | None = Field(None, description=SUBSTITUTED)
    answer: str | None = None
    invalid_citations: int | None = None
    usage: dict[str, Any] | None = None
    latency_ms: float | None = None
    citations: list[CitationOut] | None = None
    error: ErrorDetail | None = Field(None, description="Set instead of an answer when this model failed.")


class AskOut(BaseModel):
    question: str
    standalone_query: str
    mode: str = Field(description="'generative' (a chat model wrote it) or 'extractive' (quoted sentences).")
    answered: bool = Field(description="False for 'I don't know'.")
    sources: list[AnswerSourceOut]
    answer: str | None = None
    citations: list[CitationOut] | None = None
    invalid_citations: int | None = Field(None, description="Citation markers removed: they named no source.")
    conversation_id: str | None = None
    model: str | None = Field(None, description="The chat model that wrote the answer, as its server named it.")
    model_substituted: ModelSubstitutedOut | None = Field(None, description=SUBSTITUTED)
    usage: dict[str, Any] | None = None
    latency_ms: float | None = None
    answers: list[ModelAnswerOut] | None = Field(None, description="With `models`: one answer per model.")
    agent: dict[str, Any] | None = Field(
        None,
        description="Agentic answers: `steps` (rounds of tool calls) and `stopped_by` (answer, step_limit, "
        "token_budget).",
    )
    logprobs: list[dict[str, Any]] | None = Field(
        None,
        description="With `logprobs: true`: the chat model's tokens, each with its log probability (and "
        "`top_logprobs` alternatives), as the model wrote them (a citation marker naming no source is later "
        "removed from `answer` but not from these).",
    )


class MessageOut(BaseModel):
    role: str
    content: str
    standalone_query: str | None
    citations: list[dict[str, Any]]
    created_at: UtcDatetime


class ConversationOut(BaseModel):
    id: str
    object: str = Field(description="'conversation' (OpenAI's Conversations API).")
    created_at: int = Field(description="Unix seconds.")
    metadata: dict[str, str]
    collection: str = Field(description="The collection its questions were answered from ('' before the first).")
    messages: list[MessageOut]


class ModelOut(BaseModel):
    id: str
    object: str
    created: int
    owned_by: str
    provider: str = Field(description="'local', 'api', or 'rag' (answers from a collection with citations).")
    type: str | None
    dimension: int | None


class ModelList(BaseModel):
    object: str
    data: list[ModelOut]
    api_error: str | None = Field(None, description="Why the API's model list could not be read.")


class MigrationSideOut(BaseModel):
    provider: str = Field(description="local or openai (an OpenAI-compatible API).")
    model: str
    dimension: int | None = Field(description="Vector length; null until the model has answered once.")
    generation: int = Field(description="The index generation holding this model's vectors.")


class MigrationOut(BaseModel):
    """A switch of a collection's embedding model (``searchsvc collections migrate``)."""

    id: int
    object: Literal["collection.migration"] = "collection.migration"
    collection: str
    status: Literal["building", "swapped", "rolled_back", "finished", "cancelled"] = Field(
        description="building (searches use the old model) → swapped (the new one; the old kept for rollback) → "
        "rolled_back or finished (the generation not in use dropped); cancelled: a build given up."
    )
    from_: MigrationSideOut = Field(alias="from")
    to: MigrationSideOut
    chunks: int = Field(description="Chunks of the collection when it was last read.")
    texts_embedded: int = Field(description="Texts embedded with the new model by this switch (each paid once).")
    texts_cached: int = Field(description="Texts that already had a vector of the model (nothing paid).")
    tokens: int
    requests: int
    message: str | None = Field(description="What stops the swap, or what to know (texts longer than the model reads).")
    can_roll_back: bool
    created_at: UtcDatetime
    heartbeat_at: UtcDatetime | None
    swapped_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class MigrationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MigrationOut]
