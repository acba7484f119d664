"""Settings, read once from the environment (and CLI flags) into one object.

No other module reads ``os.environ``: the CLI and the app factory build a
``Settings`` and pass it down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.aimlapi.com/v1"
DEFAULT_DATA_DIR = Path(".searchsvc")
# (answer floor, extractive sentence floor) per embedding model, on cosine similarity. Cosines differ by
# model, so one number cannot serve all: bench/answerability.py calibrates them (tests/fixtures/
# answerability.jsonl, 40 answerable and 40 unanswerable questions over sample_data).
# The sentence floor is off (None) for MiniLM: tuned on half the set it lowered the held-out score.
CALIBRATED_FLOORS: dict[str, tuple[float, float | None]] = {"all-MiniLM-L6-v2": (0.5, None)}
UNCALIBRATED_FLOORS: tuple[float, float | None] = (0.2, None)  # other models: the floor of earlier releases


# The AI/ML API's embedding models (its docs: text-embedding-3-small ~62,500 pages per dollar, -3-large ~9,615,
# ada-002 ~12,500, at 800 tokens a page; 8,191 input tokens each), in USD per million tokens.
EMBEDDING_PRICES = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}
# OpenAI's list prices of its small chat models (input, output; the AI/ML API's may differ: set yours).
# How a new collection's model is told a query from a passage (searchsvc.providers.prompts).
PROMPT_CHOICES = ("auto", "text", "input_type", "none")
CHAT_PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00)}


class Settings(BaseSettings):
    """Everything configurable, with the environment variable named in each field."""

    model_config = SettingsConfigDict(env_prefix="SEARCHSVC_", extra="ignore", populate_by_name=True)

    # Where data lives.
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Folder for the SQLite database and indexes.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite in data_dir.")
    index_dir: Path | None = Field(None, description="Folder for FAISS index files; default data_dir/indexes.")

    # Provider.
    provider: Literal["auto", "local", "openai"] = Field(
        "auto", description="auto: the API when a key is set, else the local model."
    )
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AIMLAPI_API_KEY", "SEARCHSVC_API_KEY"))
    base_url: str = Field(DEFAULT_BASE_URL, description="OpenAI-compatible API base URL.")
    embedding_model: str = "text-embedding-3-small"
    chat_model: str = "gpt-4o-mini"
    # Embeddings and chat may come from different servers (local MiniLM with a remote chat model; an
    # embeddings server beside a chat server): each unset field falls back to the shared one above.
    embedding_base_url: str | None = Field(None, description="Embeddings API base URL; default SEARCHSVC_BASE_URL.")
    embedding_api_key: SecretStr | None = Field(None, description="Embeddings API key; default AIMLAPI_API_KEY.")
    embedding_request_timeout: float | None = Field(None, gt=0, description="Default SEARCHSVC_REQUEST_TIMEOUT.")
    chat_base_url: str | None = Field(
        None, description="Chat API base URL; default SEARCHSVC_BASE_URL. Setting it turns generative answers on."
    )
    chat_api_key: SecretStr | None = Field(
        None, description="Chat API key; default AIMLAPI_API_KEY. Setting it turns generative answers on."
    )
    chat_request_timeout: float | None = Field(None, gt=0, description="Default SEARCHSVC_REQUEST_TIMEOUT.")
    chat_request_deadline: float | None = Field(None, gt=0, description="Default SEARCHSVC_REQUEST_DEADLINE.")
    chat_format: Literal["openai", "anthropic", "auto"] = Field(
        "openai",
        description="Chat API format: OpenAI's /chat/completions, Anthropic's /messages, or auto (Claude "
        "models, claude-* or anthropic/*, speak /messages).",
    )
    request_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds one HTTP attempt may wait for an answer; a request sent again after a timeout "
        "waits twice as long each time, within the call's deadline.",
    )
    max_retries: int = Field(6, ge=0, le=20)
    request_deadline: float = Field(
        120.0, gt=0, description="Seconds one embedding or chat call may take, all retries included."
    )
    query_deadline: float = Field(
        6.0, gt=0, description="Seconds a query embedding (or a follow-up's rewrite) may take, retries included."
    )
    query_retries: int = Field(2, ge=0, le=10, description="Retries of a query embedding within its deadline.")
    tokenizers: dict[str, str] = Field(
        default_factory=dict,
        description="API embedding model -> its tokenizer: a tokenizer.json path (or its folder), cl100k_base or "
        "o200k_base (JSON). Others than OpenAI's are counted with cl100k_base, checked against the server's counts.",
    )
    embedding_prompts: dict[str, Any] = Field(
        default_factory=dict,
        description="Embedding model (or fnmatch pattern) -> how it tells a query from a passage, for new "
        'collections: "auto" (the model card\'s prefixes: e5, bge, nomic, arctic, mxbai; sent as the field '
        'input_type when the server reads it), "text", "input_type", "none", or {"query": "...", "passage": "..."} '
        "(JSON). A collection keeps the prompts it was created with.",
    )
    embedding_prices: dict[str, float] = Field(
        default_factory=lambda: dict(EMBEDDING_PRICES),
        description="USD per million tokens of each API embedding model, for dry runs and the usage ledger "
        "(JSON; the local model costs nothing).",
    )
    chat_prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(CHAT_PRICES),
        description="USD per million input and output tokens of each chat model, for the usage ledger (JSON).",
    )
    migration_lock_wait_seconds: float = Field(
        600.0,
        ge=0,
        description="How long a model switch (`collections migrate`, its HTTP route) waits for a running ingestion "
        "to finish before its swap.",
    )
    watch_debounce_ms: int = Field(
        1000, ge=50, le=60_000, description="`ingest --watch`: changes are gathered this long after the last one."
    )
    query_cache_size: int = Field(
        1024, ge=0, description="Query vectors remembered in each process per model (LRU); 0: none."
    )
    query_cache_rows: int = Field(
        100_000, ge=0, description="Query vectors of API models kept in SQL for every process; 0: none."
    )
    provider_probe_seconds: float = Field(
        30.0, ge=1, description="/readyz checks the API at most this often (GET /models, no paid call)."
    )
    local_model_dir: Path | None = Field(None, description="Folder with model.safetensors + tokenizer.json.")

    # Ingestion.
    collection: str = "default"
    chunk_tokens: int = Field(256, ge=16, le=8191)
    chunk_overlap: int = Field(32, ge=0)
    batch_max_inputs: int = Field(2048, ge=1)
    batch_max_tokens: int = Field(300_000, ge=1)
    max_tokens_per_input: int = Field(8191, ge=1)
    max_in_flight: int = Field(4, ge=1, le=64)
    tokens_per_minute: int | None = Field(
        None, ge=1, description="Embedding API's TPM limit, paced client-side (unset: learned from its headers)."
    )
    requests_per_minute: int | None = Field(
        None, ge=1, description="Embedding API's RPM limit, paced client-side (unset: learned from its headers)."
    )
    chat_tokens_per_minute: int | None = Field(None, ge=1, description="Chat API's TPM limit (unset: learned).")
    chat_requests_per_minute: int | None = Field(None, ge=1, description="Chat API's RPM limit (unset: learned).")
    index_type: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="New collections' vector index: auto = exact (flat) while small, HNSW from hnsw_min_chunks."
    )
    vector_backend: Literal["faiss", "pgvector"] = Field(
        "faiss",
        description="Where vectors are searched: faiss (index files beside the data, one machine) or pgvector "
        "(tables in the PostgreSQL database, shared by every server; needs pgvector 0.8+).",
    )
    pgvector_element: Literal["vector", "halfvec"] = Field(
        "vector", description="pgvector column type of new collections: halfvec halves memory and disk (16-bit floats)."
    )
    pgvector_build_memory: str = Field(
        "1GB",
        pattern=r"^[1-9][0-9]*(kB|MB|GB)$",
        description="maintenance_work_mem for an HNSW build (e.g. 4GB): the graph should fit, else the build slows "
        "down several times; about 2.2 kB per float32 vector of 384 dimensions.",
    )
    keyword_postings_budget: int = Field(
        30_000, ge=1, description="Keyword search drops a query's most common terms past this many postings."
    )
    hnsw_min_chunks: int = Field(20_000, ge=1, description="auto: switch a collection to HNSW at this many chunks.")
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree (memory and recall grow with it).")
    hnsw_ef_construction: int = Field(200, ge=8, le=2048, description="HNSW build breadth (build time vs recall).")
    hnsw_ef_search: int = Field(128, ge=8, le=4096, description="HNSW search breadth (latency vs recall).")
    faiss_threads: int | None = Field(
        None, ge=1, le=256, description="FAISS OpenMP threads: default 1 in `serve` (one per query), all in ingest."
    )
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    broker_url: SecretStr | None = Field(
        None,
        description="amqp://... or redis://...: ingestion jobs go to Celery workers (`searchsvc worker`), split "
        "into batches of job_batch_documents; unset: each server runs jobs itself.",
    )
    job_queue: str = Field(
        "searchsvc.ingest", pattern=r"^[A-Za-z0-9_.:-]{1,200}$", description="Broker queue of this deployment's jobs."
    )
    job_batch_documents: int = Field(64, ge=1, le=10_000, description="Documents per batch a worker takes.")
    ingest_roots: str = Field(
        "",
        description="Folders (separated by ':') whose files ingestion jobs created over HTTP may read; default: the "
        "server's working directory.",
    )
    job_workers: int = Field(
        1, ge=0, le=16, description="Ingestion jobs this server runs at once; 0: none (another server runs them)."
    )
    job_heartbeat_seconds: float = Field(5.0, gt=0, le=60, description="How often a running job proves it is alive.")
    job_stale_seconds: float = Field(
        30.0, gt=0, le=600, description="A running job silent this long is resumed by another runner (3 tries)."
    )
    crash_at: str | None = Field(None, description="Testing only: SIGKILL at named points (searchsvc.crashpoints).")

    # HTTP service.
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated KEY:rw or KEY:ro entries; when set, every /v1 route needs a Bearer key."
    )
    cors_origins: str = Field("", description="Comma-separated allowed CORS origins ('*' for any).")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_queued_documents: int = Field(
        20_000, ge=1, description="Upserted documents that may wait to be written; beyond, HTTP 503 + Retry-After."
    )
    index_refresh_seconds: float = Field(1.0, ge=0, description="How often the server looks for newer indexes.")

    # Answers.
    answer_min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Sources below this cosine are too far to answer from; default: the collection's measured floor.",
    )
    answer_context_tokens: int = Field(6000, ge=256, description="Token budget for numbered sources in the prompt.")
    chat_context_tokens: dict[str, int] = Field(
        default_factory=dict,
        description='Context length of chat models, JSON by model ("*": any other), e.g. {"*": 2048} for a small '
        "llama.cpp model: the sources, the thread a follow-up's rewrite sees and the answer's room fit in it.",
    )
    rewrite_history_tokens: int = Field(
        1000, ge=64, description="Tokens of the thread (newest first) shown to the model that rewrites a follow-up."
    )
    answer_sources: int = Field(8, ge=1, le=50, description="Chunks retrieved for an answer.")
    agent_max_steps: int = Field(4, ge=1, le=16, description="Agentic answers: rounds of tool calls before answering.")
    agent_token_budget: int = Field(
        40_000, ge=1000, description="Agentic answers: tokens (every call's total) after which no more tools are run."
    )
    extractive_min_score: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Extractive answers: the best sentence's cosine must reach this; default: calibrated per model.",
    )

    @field_validator("embedding_prompts")
    @classmethod
    def _known_prompt_styles(cls, value: dict[str, Any]) -> dict[str, Any]:
        for model, style in value.items():
            prefixes = isinstance(style, dict) and style and set(style) <= {"query", "passage"}
            if (isinstance(style, str) and style in PROMPT_CHOICES) or (
                prefixes and all(isinstance(text, str) and len(text) <= 512 for text in style.values())
            ):
                continue
            raise ValueError(
                f"SEARCHSVC_EMBEDDING_PROMPTS[{model!r}] must be one of {', '.join(PROMPT_CHOICES)} or an object "
                'with "query" and/or "passage" prefixes (strings of at most 512 characters)'
            )
        return value

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        size = info.data.get("chunk_tokens", 256)
        if value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_tokens ({size})")
        return value

    def answer_floor(self, model: str) -> float:
        """The relevance floor of answers for an embedding model: the setting, else the model's calibrated floor."""
        if self.answer_min_score is not None:
            return self.answer_min_score
        return CALIBRATED_FLOORS.get(model, UNCALIBRATED_FLOORS)[0]

    def extractive_floor(self, model: str) -> float | None:
        """The floor of the best quoted sentence in extractive answers, likewise (None: no floor)."""
        if self.extractive_min_score is not None:
            return self.extractive_min_score
        return CALIBRATED_FLOORS.get(model, UNCALIBRATED_FLOORS)[1]

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, else SQLite inside data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'searchsvc.db').resolve()}"

    @property
    def resolved_index_dir(self) -> Path:
        """The folder that holds one FAISS index file per collection."""
        return self.index_dir if self.index_dir is not None else self.data_dir / "indexes"

    @property
    def service_keys(self) -> dict[str, str]:
        """API keys of the HTTP service: key -> "rw" or "ro" (keys without a suffix are read-write)."""
        if self.api_keys is None:
            return {}
        keys: dict[str, str] = {}
        for entry in self.api_keys.get_secret_value().split(","):
            key, _, scope = (
                entry.strip().rpartition(":") if entry.strip().endswith((":ro", ":rw")) else (entry.strip(), "", "rw")
            )
            if key:
                keys[key] = scope
        return keys

    @property
    def ingest_root_list(self) -> list[Path]:
        """The folders HTTP ingestion jobs may read, resolved (the working directory when none is set)."""
        roots = [Path(part) for part in self.ingest_roots.split(":") if part.strip()]
        return [root.resolve() for root in roots or [Path.cwd()]]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def has_api_key(self) -> bool:
        """A key for the embeddings API (its own, or the shared one)."""
        return self.endpoint("embeddings").key is not None

    @property
    def chat_configured(self) -> bool:
        """A chat endpoint of its own was configured (its base URL or key): answers are generative with it."""
        return self.chat_base_url is not None or _secret(self.chat_api_key) is not None

    def endpoint(self, side: Literal["embeddings", "chat"]) -> Endpoint:
        """Where embeddings (or chat) are sent: that side's settings, each unset one the shared setting."""
        own_url, own_key, own_timeout = (
            (self.embedding_base_url, self.embedding_api_key, self.embedding_request_timeout)
            if side == "embeddings"
            else (self.chat_base_url, self.chat_api_key, self.chat_request_timeout)
        )
        deadline = self.chat_request_deadline if side == "chat" else None
        return Endpoint(
            base_url=(own_url or self.base_url).rstrip("/"),
            key=_secret(own_key) or _secret(self.api_key),
            timeout=own_timeout or self.request_timeout,
            deadline=deadline or self.request_deadline,
            key_variable=("SEARCHSVC_EMBEDDING_API_KEY" if side == "embeddings" else "SEARCHSVC_CHAT_API_KEY")
            if own_key is not None else "AIMLAPI_API_KEY",
        )  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """One side's API: base URL, key (None: none), timeout and deadline per call, and the variable naming its key."""

    base_url: str
    key: str | None
    timeout: float
    deadline: float
    key_variable: str


def _secret(value: SecretStr | None) -> str | None:
    """A key as text; None when unset or blank."""
    text = value.get_secret_value().strip() if value is not None else ""
    return text or None
