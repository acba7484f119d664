"""Ingestion: find documents, skip unchanged ones, embed only new text, store, index.

Order of writes keeps every moment consistent: vectors are committed to the
embeddings table as each request completes (so an interrupted run keeps what it
paid for), documents and chunks are committed per window once all their vectors
exist, and the FAISS index, derived data, is updated after SQL and saved
atomically; any gap left by a crash is closed from SQL on the next open.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest.batcher import EmbeddingBatch, plan_batches
from ingest.chunker import Chunker
from ingest.document import ParseError, SkippedDocument, SourceDocument
from ingest.sources import DEFAULT_MAX_FILE_BYTES, discover, record_document
from searchsvc.crashpoints import NO_CRASHES, Crashpoints
from searchsvc.errors import ProviderResponseError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.rate_limit import TokenBucket
from searchsvc.storage import repository as repo
from searchsvc.storage.schema import Collection
from searchsvc.store import Store

PIPELINE_VERSION = 1  # bump when parsing or chunking changes what a document becomes
MIN_SAVE_INTERVAL_SECONDS = 2.0  # a running server sees new documents this soon after they are written
SAVE_COST_MULTIPLE = 10.0  # but never spend more than a tenth of the time saving a large index


class Progress(Protocol):
    def documents(self, total: int) -> None: ...
    def advance(self, documents: int) -> None: ...


class NoProgress:
    def documents(self, total: int) -> None:
        pass

    def advance(self, documents: int) -> None:
        pass


@dataclass
class IngestReport:
    collection: str
    provider: str
    model: str
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    chunks_cached: int = 0
    tokens_embedded: int = 0
    embedding_requests: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict, repr=False)  # document key -> added/changed/unchanged

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("status")
        return data


@dataclass
class _Prepared:
    source: SourceDocument
    new: repo.NewDocument
    embed_texts: list[tuple[str, str, int]]  # (hash, text, tokens)


class IngestPipeline:
    """One run of ingestion into one collection."""

    def __init__(
        self,
        store: Store,
        provider: EmbeddingProvider,
        collection: str,
        *,
        chunk_tokens: int,
        chunk_overlap: int,
        progress: Progress | None = None,
        lock_wait_seconds: float = 0.0,
        crashpoints: Crashpoints = NO_CRASHES,
    ) -> None:
        self.crashpoints = crashpoints
        self.store = store
        self.lock_wait_seconds = lock_wait_seconds
        self.provider = provider
        self.collection_name = collection
        self.limits = limits = provider.limits
        max_tokens = min(chunk_tokens, limits.max_tokens_per_input)
        self.chunker = Chunker(provider.tokenizer, max_tokens, min(chunk_overlap, max_tokens // 2))
        self.progress = progress or NoProgress()
        self.window_chunks = min(16384, max(256, 4 * limits.max_inputs_per_request * limits.max_in_flight))
        self._next_save = time.monotonic()

    def run(
        self, found: Iterable[SourceDocument | SkippedDocument], source: str | None = None, prune: bool = False
    ) -> IngestReport:
        """Ingest everything ``found``; with ``prune``, delete documents of ``source`` that were not found."""
        started = time.monotonic()
        report = IngestReport(self.collection_name, self.provider.kind, self.provider.model)
        found = list(found)
        with self.store.writer_lock(self.collection_name, self.lock_wait_seconds):
            collection = self.store.ensure_collection(self.collection_name, self.provider)
            # Without --prune only the documents at hand matter: don't read the whole collection.
            keys = None if prune else [item.key for item in found if isinstance(item, SourceDocument)]
            with self.store.session() as session:
                existing = repo.document_hashes(session, collection.id, keys)
            todo, sources_seen, seen_keys = self._classify(found, existing, report)
            self.progress.documents(len(todo))
            collection = self._ingest_all(collection, todo, report)
            if prune:
                collection = self._prune(
                    collection, existing, seen_keys, {s for s in (*sources_seen, source) if s}, report
                )
            if collection.dimension is None:
                collection = self._dimension_from_stored_vectors(collection)
            if collection.dimension is not None:
                index = self.store.index(collection)  # loading brings it in step with SQL (and saves if it had to)
                converted = self.store.fit_index_type(collection, index)
                # An unchanged run writes no new generation: servers would reload the whole index for nothing.
                if converted or report.added or report.changed or report.removed:
                    index.save(before_publish=lambda: self.crashpoints.hit("index_save"))
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _dimension_from_stored_vectors(self, collection: Collection) -> Collection:
        """A collection whose chunks all reuse cached vectors (or was left that way by an older version)
        still gets its dimension, and so an index."""
        with self.store.session() as session:
            dimension = repo.collection_vector_dimension(session, collection)
        return self.store.record_dimension(collection, dimension) if dimension is not None else collection

    def _fingerprint(self, source: SourceDocument) -> str:
        """Content hash plus how it is cut: a new parser version or chunk size re-embeds what it changes."""
        recipe = f"{PIPELINE_VERSION}:{self.chunker.max_tokens}:{self.chunker.overlap}:{source.content_hash}"
        return hashlib.sha256(recipe.encode()).hexdigest()

    def _classify(
        self,
        found: Iterable[SourceDocument | SkippedDocument],
        existing: dict[str, tuple[int, str, str]],
        report: IngestReport,
    ) -> tuple[list[SourceDocument], set[str], set[str]]:
        todo: list[SourceDocument] = []
        sources: set[str] = set()
        keys: set[str] = set()
        for item in found:
            if isinstance(item, SkippedDocument):
                report.skipped.append({"path": item.path, "reason": item.reason})
                continue
            if item.key in keys:
                report.skipped.append({"path": item.path or item.key, "reason": f"duplicate id {item.key!r}"})
                continue
            keys.add(item.key)
            sources.add(item.source)
            previous = existing.get(item.key)
            if previous is not None and previous[1] == self._fingerprint(item):
                report.unchanged += 1
                report.status[item.key] = "unchanged"
            else:
                todo.append(item)
                status = "added" if previous is None else "changed"
                setattr(report, status, getattr(report, status) + 1)
                report.status[item.key] = status
        return todo, sources, keys

    def _ingest_all(self, collection: Collection, todo: list[SourceDocument], report: IngestReport) -> Collection:
        window: list[_Prepared] = []
        window_chunks = 0
        for source in todo:
            prepared = self._prepare(source, report)
            if prepared is None:
                self.progress.advance(1)
                continue
            window.append(prepared)
            window_chunks += len(prepared.new.chunks)
            if window_chunks >= self.window_chunks:
                collection = self._ingest_window(collection, window, report)
                window, window_chunks = [], 0
        if window:
            collection = self._ingest_window(collection, window, report)
        return collection

    def _prepare(self, source: SourceDocument, report: IngestReport) -> _Prepared | None:
        try:
            parsed = source.load()
        except ParseError as exc:
            report.skipped.append({"path": source.path or source.key, "reason": str(exc)})
            return None
        self.crashpoints.hit("parsed")
        title = source.title or parsed.title or (source.key.rsplit("/", 1)[-1])
        spans = self.chunker.chunk(parsed, title)
        chunks, embed_texts = [], []
        for ordinal, span in enumerate(spans):
            text_hash = hashlib.sha256(span.embed_text.encode("utf-8", "surrogatepass")).hexdigest()
            embed_texts.append((text_hash, span.embed_text, span.token_count))
            chunks.append(
                repo.NewChunk(
                    ordinal=ordinal,
                    text=span.text,
                    embed_hash=text_hash,
                    token_count=span.token_count,
                    start_char=span.start,
                    end_char=span.end,
                    line_start=span.line_start,
                    line_end=span.line_end,
                    page=span.page,
                    heading_path=list(span.heading_path),
                )
            )
        new = repo.NewDocument(
            key=source.key,
            source=source.source,
            path=source.path,
            title=title,
            content_hash=self._fingerprint(source),
            metadata=source.metadata,
            chunks=chunks,
        )
        return _Prepared(source, new, embed_texts)

    def _ingest_window(self, collection: Collection, window: list[_Prepared], report: IngestReport) -> Collection:
        wanted = {h: (text, tokens) for item in window for h, text, tokens in item.embed_texts}
        with self.store.session() as session:
            cached = repo.cached_hashes(session, self.provider.model, wanted)
        pending = {h: v for h, v in wanted.items() if h not in cached}
        report.chunks += sum(len(item.new.chunks) for item in window)
        report.chunks_cached += sum(1 for item in window for h, _, _ in item.embed_texts if h in cached)
        collection = self._embed(collection, pending, report)
        self._write_documents(collection, window)
        self.progress.advance(len(window))
        return collection

    def _embed(self, collection: Collection, pending: dict[str, tuple[str, int]], report: IngestReport) -> Collection:
        """Send batches with at most ``max_in_flight`` requests open; commit each as soon as it returns.

        Requests are sent only as earlier ones finish, so a kill loses (and a re-run pays again for)
        at most the requests in flight at that moment, never a queue of them.
        """
        queue = plan_batches(pending, self.limits)
        bucket = TokenBucket(self.limits.tokens_per_minute) if self.limits.tokens_per_minute else None
        in_flight: dict[Future[np.ndarray], EmbeddingBatch] = {}
        with ThreadPoolExecutor(max_workers=self.limits.max_in_flight) as pool:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < self.limits.max_in_flight:
                        batch = queue.pop(0)
                        if bucket is not None:
                            bucket.acquire(batch.tokens)  # paced to the API's tokens-per-minute limit
                        in_flight[pool.submit(self.provider.embed_documents, batch.texts)] = batch
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        batch = in_flight.pop(future)
                        collection = self._store_batch(collection, batch, future.result(), report)
            finally:
                for future in in_flight:
                    future.cancel()
        return collection

    def _store_batch(
        self, collection: Collection, batch: EmbeddingBatch, vectors: np.ndarray, report: IngestReport
    ) -> Collection:
        if vectors.shape[0] != len(batch.texts):
            raise ProviderResponseError(f"{vectors.shape[0]} vectors came back for {len(batch.texts)} inputs")
        collection = self.store.record_dimension(collection, int(vectors.shape[1]))
        with self.store.session() as session:
            repo.store_embeddings(session, self.provider.model, dict(zip(batch.hashes, vectors, strict=True)))
            session.commit()
        self.crashpoints.hit("embedded_batch")
        report.tokens_embedded += batch.tokens
        report.embedding_requests += 1
        return collection

    def _write_documents(self, collection: Collection, window: list[_Prepared]) -> None:
        # Load the index before this write, so it is in step with SQL as it was.
        index = self.store.index(collection) if collection.dimension is not None else None
        added: list[int] = []
        removed: list[int] = []
        with self.store.session() as session:
            for item in window:
                new_ids, old_ids = repo.write_document(session, collection.id, item.new)
                added.extend(new_ids)
                removed.extend(old_ids)
            self.crashpoints.hit("sql_write")
            session.commit()
        self.crashpoints.hit("index_update")
        if index is None:
            return  # nothing embedded yet (every document was empty)
        index.remove(np.array(removed, dtype=np.int64))
        with self.store.session() as session:
            for ids, vectors in repo.chunk_vectors(session, collection, np.array(added, dtype=np.int64)):
                index.add(ids, vectors)
        if time.monotonic() >= self._next_save:
            started = time.monotonic()
            index.save(before_publish=lambda: self.crashpoints.hit("index_save"))
            cost = time.monotonic() - started
            self._next_save = time.monotonic() + max(MIN_SAVE_INTERVAL_SECONDS, SAVE_COST_MULTIPLE * cost)

    def _prune(
        self,
        collection: Collection,
        existing: dict[str, tuple[int, str, str]],
        seen_keys: set[str],
        sources: set[str],
        report: IngestReport,
    ) -> Collection:
        gone = [doc_id for key, (doc_id, _, source) in existing.items() if source in sources and key not in seen_keys]
        if not gone:
            return collection
        with self.store.session() as session:
            removed = repo.delete_documents(session, gone)
            session.commit()
        report.removed = len(gone)
        if collection.dimension is not None:
            self.store.index(collection).remove(np.array(removed, dtype=np.int64))
        return collection


def ingest_path(
    store: Store,
    provider: EmbeddingProvider,
    path: Path,
    collection: str,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    prune: bool = False,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    progress: Progress | None = None,
    crashpoints: Crashpoints = NO_CRASHES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> IngestReport:
    """Ingest a folder, a JSONL file or one document into ``collection``."""
    pipeline = IngestPipeline(
        store,
        provider,
        collection,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        progress=progress,
        crashpoints=crashpoints,
    )
    found = discover(path, include, exclude, max_file_bytes)
    return pipeline.run(found, source=Path(path).resolve().name, prune=prune)


def ingest_records(
    store: Store,
    provider: EmbeddingProvider,
    collection: str,
    records: list[tuple[str, str, str | None, dict[str, object]]],
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    source: str = "api",
    lock_wait_seconds: float = 30.0,
) -> IngestReport:
    """Upsert ``(id, text, title, metadata)`` records through the same pipeline as files."""
    pipeline = IngestPipeline(
        store,
        provider,
        collection,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        lock_wait_seconds=lock_wait_seconds,
    )
    found = [record_document(rid, text, title, metadata, source, None) for rid, text, title, metadata in records]
    return pipeline.run(found, source=source, prune=False)
