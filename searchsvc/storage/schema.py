"""SQL tables. SQL is the source of truth; FAISS indexes are rebuilt from it.

Chunk ids are the FAISS ids, so chunks use AUTOINCREMENT on SQLite: a deleted id is
never handed to a new chunk, and a stale vector can never be mistaken for new text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT ids on PostgreSQL, INTEGER (the rowid alias) on SQLite.
ChunkId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Collection(Base):
    """A named set of documents embedded with one model, at one dimension."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    embedding_model: Mapped[str] = mapped_column(String(256))
    dimension: Mapped[int | None] = mapped_column(Integer)
    index_type: Mapped[str] = mapped_column(String(32), default="flat")
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # which index holds the vectors of (provider, embedding_model): 0 first, then one per model switch
    vector_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # how its model was told a query from a passage (PromptStyle.to_json(); NULL: no prompts)
    embedding_prompts: Mapped[str | None] = mapped_column(Text, default=None)
    relevance_floor: Mapped[float | None] = mapped_column(Double, default=None)  # searchsvc.relevance_floor
    floor_chunks: Mapped[int | None] = mapped_column(Integer, default=None)  # measured at these chunks,
    floor_vectors_key: Mapped[str | None] = mapped_column(String(300), default=None)  # with these vectors


class ModelMigration(Base):
    """A switch of a collection's embedding model (``collections migrate``): a shadow generation built from the
    texts in SQL, swapped in by one update of the collection's row, kept for ``--rollback`` until dropped."""

    __tablename__ = "model_migrations"
    __table_args__ = (Index("ix_model_migrations_collection", "collection_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # building, swapped, rolled_back, finished, cancelled
    from_generation: Mapped[int] = mapped_column(Integer)
    from_provider: Mapped[str] = mapped_column(String(32))
    from_model: Mapped[str] = mapped_column(String(256))
    from_dimension: Mapped[int] = mapped_column(Integer)
    to_generation: Mapped[int] = mapped_column(Integer)
    to_provider: Mapped[str] = mapped_column(String(32))
    to_model: Mapped[str] = mapped_column(String(256))
    to_dimension: Mapped[int | None] = mapped_column(Integer)
    from_prompts: Mapped[str | None] = mapped_column(Text, default=None)
    to_prompts: Mapped[str | None] = mapped_column(Text, default=None)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    texts_embedded: Mapped[int] = mapped_column(Integer, default=0)
    texts_cached: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    swapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Document(Base):
    """One source file or JSONL record, keyed by path or record id within its collection."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "key", name="uq_documents_collection_key"),
        Index("ix_documents_collection_source", "collection_id", "source"),
        Index("ix_documents_collection_content", "collection_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str | None] = mapped_column(String(4096))
    title: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SkippedDocument(Base):
    """A file that was found but yields nothing to index (no text layer, unreadable PDF...), and why.

    Keyed like a document, with the same content fingerprint: an unchanged file is not parsed again.
    """

    __tablename__ = "skipped_documents"
    __table_args__ = (UniqueConstraint("collection_id", "key", name="uq_skipped_documents_collection_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(String(1024))
    path: Mapped[str | None] = mapped_column(String(4096))
    content_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Chunk(Base):
    """A token-bounded span of a document, with its place in the source."""

    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_document", "document_id"),
        Index("ix_chunks_collection", "collection_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embed_hash: Mapped[str] = mapped_column(String(64))
    token_count: Mapped[int] = mapped_column(Integer)
    start_char: Mapped[int] = mapped_column(Integer)
    end_char: Mapped[int] = mapped_column(Integer)
    line_start: Mapped[int | None] = mapped_column(Integer)
    line_end: Mapped[int | None] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    chunk_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class IngestSource(Base):
    """A folder or file ingested into a collection, by its resolved location.

    Its ``label`` (the folder's name, or as much of its path as tells it apart from the collection's
    other sources) prefixes the keys of its documents and is their ``source``: two folders named
    ``docs`` in different places get ``docs`` and ``b/docs``, never each other's documents.
    """

    __tablename__ = "ingest_sources"
    __table_args__ = (
        UniqueConstraint("collection_id", "label", name="uq_ingest_sources_label"),
        UniqueConstraint("collection_id", "location_hash", name="uq_ingest_sources_location"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(1024))
    location: Mapped[str] = mapped_column(Text)
    location_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """A vector for (model, hash of the embedded text): the store and the cache in one.

    Chunks point here by ``embed_hash``, so identical text is embedded and stored once,
    and ``searchsvc reindex`` rebuilds every FAISS index from this table alone.
    """

    __tablename__ = "embeddings"

    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueryEmbedding(Base):
    """A query's vector for (model, hash of the query): repeated queries to an API model are not paid again.
    Apart from ``embeddings`` (documents' texts), so it can be trimmed without touching a collection."""

    __tablename__ = "query_embeddings"
    __table_args__ = (Index("ix_query_embeddings_created", "created_at"),)

    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UsageRecord(Base):
    """What one embedding or chat call (or one batch of them) cost: the token ledger."""

    __tablename__ = "usage_ledger"
    __table_args__ = (Index("ix_usage_ledger_at", "at"),)

    id: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # local or openai (an OpenAI-compatible API)
    model: Mapped[str] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(16))  # ingest, query, answer, rewrite, embeddings
    collection: Mapped[str | None] = mapped_column(String(128), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=1)
    cost_usd: Mapped[float | None] = mapped_column(Double, nullable=True)  # at the prices set then; null: unknown
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)  # tokens counted here, not the API's usage


class DatabaseIdentity(Base):
    """One row: a random id made when the schema was created. With the database's location it names
    the folder of this database's vector indexes, so two databases never share index files."""

    __tablename__ = "database_identity"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Conversation(Base):
    """A thread of questions and answers; follow-ups are rewritten using its history."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(128))  # "" until a question is asked in it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    meta: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON)  # the Conversations API's metadata


class ConversationMessage(Base):
    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_conversation", "conversation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    standalone_query: Mapped[str | None] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VectorTable(Base):
    """A collection's pgvector table (the pgvector backend only): what a FAISS manifest records, in SQL."""

    __tablename__ = "vector_indexes"
    __table_args__ = (UniqueConstraint("table_name", name="uq_vector_indexes_table_name"),)

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63))
    collection_id: Mapped[int] = mapped_column(Integer)
    database: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(256))
    dimension: Mapped[int] = mapped_column(Integer)
    index_type: Mapped[str] = mapped_column(String(32))
    element_type: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger)


class IngestJob(Base):
    """An ingestion job: what to ingest, where it stands, and who runs it (searchsvc.jobs)."""

    __tablename__ = "ingest_jobs"
    __table_args__ = (Index("ix_ingest_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    collection: Mapped[str] = mapped_column(String(128))
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    skips: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IngestJobBatch(Base):
    """One batch of a distributed job's documents (relative paths; empty: the whole source), taken by any worker."""

    __tablename__ = "ingest_job_batches"

    job_id: Mapped[str] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    paths: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    skips: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RateBudget(Base):
    """One provider's shared tokens-per-minute pacing: every process that embeds with it reserves here.

    ``ready_at`` is the theoretical arrival time of the generic cell rate algorithm (seconds since the
    epoch): a reservation of n tokens moves it n / rate seconds later, and may be sent once ``ready_at``
    is within one minute's burst of now."""

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    ready_at: Mapped[float] = mapped_column(Double)


class UploadedFile(Base):
    """A file uploaded through the Files API (``POST /v1/files``), kept whole in SQL so that every server
    and worker sharing the database can read it. ``seq`` orders listings and their cursors."""

    __tablename__ = "uploaded_files"
    __table_args__ = ({"sqlite_autoincrement": True},)  # a deleted file's place in listings is never reused

    seq: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class VectorStore(Base):
    """What OpenAI's Vector Stores API adds to a collection (the vector store *is* the collection, its id the
    collection's name): a display name, metadata and an expiry. Collections made otherwise have no row."""

    __tablename__ = "vector_stores"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(256))
    store_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_active_at: Mapped[int] = mapped_column(BigInteger)


class VectorStoreFile(Base):
    """An uploaded file added to a vector store: its attributes (filterable), how it is chunked, and the
    ingestion job that brings it in (its status is read from that job and from what the job wrote)."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        UniqueConstraint("collection_id", "file_id", name="uq_vector_store_files"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    file_id: Mapped[str] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chunking: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class StoredResponse(Base):
    """A response of the Responses API kept for ``previous_response_id`` and ``GET /v1/responses/{id}``:
    the response object as sent, and the input items it answered (each with an id)."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    previous_response_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
