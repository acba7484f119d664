"""Ingestion: find documents, skip unchanged ones, embed only new text, store, index.

Documents stream through: they are classified in small batches as discovery yields them, parsed
only when new or changed, and written in windows of chunks, so memory follows the window, not the
folder. Order of writes keeps every moment consistent: vectors are committed to the embeddings table
as each request completes (so an interrupted run keeps what it paid for), documents and chunks are
committed per window once all their vectors exist, and the FAISS index, derived data, is updated
after SQL and saved atomically; any gap left by a crash is closed from SQL on the next open.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np

from ingest.batcher import EmbeddingBatch
from ingest.chunker import Chunker
from ingest.document import ParseError, SkippedDocument, SourceDocument, SourceUnavailable
from ingest.embedding import embed_pending
from ingest.prepare import Prepared, file_name, prepare_document
from ingest.renames import Gone, RenameFinder
from ingest.report import IngestReport, NoProgress, Progress
from searchsvc.crashpoints import NO_CRASHES, Crashpoints
from searchsvc.errors import ProviderResponseError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.usage import Usage
from searchsvc.storage import repository as repo
from searchsvc.storage.rate_budget import pacer_for
from searchsvc.storage.schema import Collection
from searchsvc.storage.usage_ledger import record_now
from searchsvc.store import Store

__all__ = ["IngestPipeline", "IngestReport", "Progress"]

PIPELINE_VERSION = 1  # bump when parsing or chunking changes what a document becomes
CLASSIFY_BATCH = 256  # documents looked up in SQL at once
NO_TEXT = "no text to index (a scanned PDF without a text layer, or an empty document)"


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
        # one budget for every process embedding with this API and model (shared through SQL): its limits as
        # configured, else as its headers announce them; a 429 holds them all off
        self._pacer = pacer_for(store.session, provider, functools.partial(self.progress.embedded, 0, 0))

    def run(
        self,
        found: Iterable[SourceDocument | SkippedDocument],
        source: str | None = None,
        prune: bool = False,
        total: int | None = None,
        report: IngestReport | None = None,
    ) -> IngestReport:
        """Ingest everything ``found`` (streamed); with ``prune``, delete documents of ``source`` not found.
        Counts go to ``report`` when given (a watcher may read it as the run goes)."""
        started = time.monotonic()
        report = report or IngestReport(self.collection_name, self.provider.kind, self.provider.model)
        with self.store.writer_lock(self.collection_name, self.lock_wait_seconds):
            collection = self.store.ensure_collection(self.collection_name, self.provider)
            self.progress.documents(total)
            everything = self._known(collection, None, source) if prune and source else None
            self._renames = RenameFinder(self.store.session, collection.id)
            seen: set[str] = set()
            window: list[Prepared] = []
            window_chunks = 0
            for batch in _batched(found, CLASSIFY_BATCH):
                known = everything if everything is not None else self._known(collection, batch, None)
                moved = self._renames.same_content(_new_files(batch, known, seen), self._fingerprint)
                for item in batch:
                    if isinstance(item, SourceDocument) and item.key in moved:
                        self._move(collection, item, moved[item.key], seen, report)
                        continue
                    prepared = self._take(collection, item, known, seen, report)
                    if prepared is None:
                        continue
                    window.append(prepared)
                    window_chunks += len(prepared.new.chunks)
                    if window_chunks >= self.window_chunks:
                        collection = self._ingest_window(collection, window, report)
                        window, window_chunks = [], 0
            if window:
                collection = self._ingest_window(collection, window, report)
            if everything is not None:
                self._prune(collection, everything, seen, report)
            self._finish_index(collection)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def classify(
        self, collection: Collection | None, found: Iterable[SourceDocument | SkippedDocument]
    ) -> Iterator[tuple[str, Prepared | None]]:
        """Without writing: what a run would make of each found item (``skipped``, ``unchanged``, ``renamed``,
        ``added`` or ``changed``) and, for added and changed ones, the document parsed and chunked."""
        seen: set[str] = set()
        finder = RenameFinder(self.store.session, collection.id) if collection is not None else None
        for batch in _batched(found, CLASSIFY_BATCH):
            known = self._known(collection, batch, None) if collection is not None else {}
            moved = finder.same_content(_new_files(batch, known, seen), self._fingerprint) if finder else {}
            for item in batch:
                if not isinstance(item, SourceDocument) or item.key in seen:
                    yield "skipped", None
                    continue
                seen.add(item.key)
                previous = known.get(item.key)
                fingerprint = self._skip_fingerprint(item) if previous is not None and previous.skipped else None
                if previous is not None and previous.content_hash == (fingerprint or self._fingerprint(item)):
                    yield "unchanged", None
                elif item.key in moved:
                    yield "renamed", None
                else:
                    yield self._prepared_or_skipped(item, previous)

    def _prepared_or_skipped(self, item: SourceDocument, previous: repo.Known | None) -> tuple[str, Prepared | None]:
        try:
            prepared = self._prepare(item, "changed" if previous is not None and not previous.skipped else "added")
        except ParseError:  # SourceUnavailable too: the run reports the reason
            return "skipped", None
        return ("skipped", None) if prepared is None else (prepared.status, prepared)

    def _known(
        self, collection: Collection, batch: list[SourceDocument | SkippedDocument] | None, source: str | None
    ) -> dict[str, repo.Known]:
        keys = None if batch is None else [item.key for item in batch if isinstance(item, SourceDocument)]
        with self.store.session() as session:
            return repo.known_documents(session, collection.id, keys, source)

    def _take(
        self,
        collection: Collection,
        item: SourceDocument | SkippedDocument,
        known: dict[str, repo.Known],
        seen: set[str],
        report: IngestReport,
    ) -> Prepared | None:
        """Classify one found item; parse it if it is new or changed. Returns what must be embedded."""
        if isinstance(item, SkippedDocument):
            report.skipped.append({"path": item.path, "reason": item.reason})
            self.progress.advance(1)
            return None
        if item.key in seen:
            report.skip(item.key, item.path, f"duplicate id {item.key!r}")
            self.progress.advance(1)
            return None
        seen.add(item.key)
        previous = known.get(item.key)
        fingerprint = self._skip_fingerprint(item) if previous is not None and previous.skipped else None
        if previous is not None and previous.content_hash == (fingerprint or self._fingerprint(item)):
            report.count(item.key, "unchanged")
            report.skipped_before += previous.skipped
            self.progress.advance(1)
            return None
        status = "changed" if previous is not None and not previous.skipped else "added"
        try:
            prepared = self._prepare(item, status)
        except SourceUnavailable as exc:  # says nothing of the content: keep what is indexed, try again next run
            report.skip(item.key, item.path, str(exc))
            self.progress.advance(1)
            return None
        except ParseError as exc:
            prepared, reason = None, str(exc)
        else:
            reason = NO_TEXT
        if prepared is None:
            self._record_skip(collection, item, previous, reason, report)
            self.progress.advance(1)
        elif status == "added":
            self._match_edited_rename(prepared, seen)
        return prepared

    def _move(
        self, collection: Collection, item: SourceDocument, gone: Gone, seen: set[str], report: IngestReport
    ) -> None:
        """A file found under a new name with the content of a document whose file is gone: the document
        follows it (key, path and a title taken from the file name); chunks and vectors stay as they are."""
        title = file_name(item.key) if gone.title == file_name(gone.key) else gone.title
        with self.store.session() as session:
            repo.move_document(session, gone.row_id, item.key, item.source, item.path, title)
            repo.forget_skips(session, collection.id, [item.key])
            session.commit()
        seen.update((item.key, gone.key))
        report.rename(item.key, gone.path, item.path, changed=False)
        self.progress.advance(1)

    def _match_edited_rename(self, prepared: Prepared, seen: set[str]) -> None:
        """A new file that mostly shares its chunks with a document whose file is gone replaces it."""
        hashes = [text_hash for text_hash, _, _ in prepared.embed_texts]
        gone = self._renames.most_alike(prepared.source, hashes, seen)
        if gone is not None:
            prepared.status, prepared.replaces, prepared.renamed_from = "renamed", gone.row_id, gone.path
            seen.add(gone.key)

    def _fingerprint(self, source: SourceDocument) -> str:
        """Content hash plus how it is cut: a new parser version or chunk size re-embeds what it changes."""
        recipe = f"{PIPELINE_VERSION}:{self.chunker.max_tokens}:{self.chunker.overlap}:{source.content_hash}"
        return hashlib.sha256(recipe.encode()).hexdigest()

    def _skip_fingerprint(self, source: SourceDocument) -> str:
        """A skipped file is looked at again when it changes, and when the PDF library changes (a newer
        pypdf may find text where this one found none)."""
        return hashlib.sha256(f"{self._fingerprint(source)}:{_pdf_library()}".encode()).hexdigest()

    def _prepare(self, source: SourceDocument, status: str) -> Prepared | None:
        """Parse and chunk a document; None when it has no text to index."""
        prepared = prepare_document(source, self.chunker, self._fingerprint(source), status)
        self.crashpoints.hit("parsed")
        return prepared

    def _record_skip(
        self,
        collection: Collection,
        item: SourceDocument,
        previous: repo.Known | None,
        reason: str,
        report: IngestReport,
    ) -> None:
        """Remember (once) that this version yields nothing; a document it replaces goes with its chunks."""
        report.skip(item.key, item.path, reason)
        removed: list[int] = []
        with self.store.session() as session:
            if previous is not None and not previous.skipped:
                removed = repo.delete_documents(session, [previous.row_id])
            fingerprint = self._skip_fingerprint(item)
            repo.record_skip(session, collection.id, item.key, item.source, item.path, fingerprint, reason)
            session.commit()
        if removed:
            self.store.indexes.follow(collection, removed=removed, publish="no")
            report.removed += 1

    def _ingest_window(self, collection: Collection, window: list[Prepared], report: IngestReport) -> Collection:
        wanted = {h: (text, tokens) for item in window for h, text, tokens in item.embed_texts}
        with self.store.session() as session:
            cached = repo.cached_hashes(session, self.provider.vectors_key, wanted)
        pending = {h: v for h, v in wanted.items() if h not in cached}
        report.chunks += sum(len(item.new.chunks) for item in window)
        report.chunks_cached += sum(1 for item in window for h, _, _ in item.embed_texts if h in cached)
        collection, failed = self._embed(collection, pending, report)
        window = self._without_failed(window, failed, report) if failed else window
        self._write_documents(collection, window)
        for item in window:
            if item.renamed_from is not None:
                report.rename(item.new.key, item.renamed_from, item.new.path, changed=True)
            else:
                report.count(item.new.key, item.status)
        self.progress.advance(len(window))
        return collection

    def _embed(
        self, collection: Collection, pending: dict[str, tuple[str, int]], report: IngestReport
    ) -> tuple[Collection, dict[str, str]]:
        """Embed and keep ``pending``; returns the collection and the texts the API refused (hash -> reason)."""
        state = {"collection": collection}

        def store_batch(batch: EmbeddingBatch, vectors: np.ndarray) -> None:
            state["collection"] = self._store_batch(state["collection"], batch, vectors, report)

        def split(batch: EmbeddingBatch, reason: str) -> None:
            report.batches_split += 1

        failed = embed_pending(self.provider, pending, store_batch, self._pacer, split)
        return state["collection"], failed

    def _without_failed(self, window: list[Prepared], failed: dict[str, str], report: IngestReport) -> list[Prepared]:
        """A document with a chunk the API refused is not written (its earlier version stays, and the next
        run tries again); it is reported failed, naming the chunk and the reason."""
        kept = []
        for item in window:
            refused = [(n, failed[h]) for n, (h, _, _) in enumerate(item.embed_texts) if h in failed]
            if refused:
                ordinal, reason = refused[0]
                report.fail(item.new.key, item.new.path, f"chunk {ordinal + 1} of {len(item.embed_texts)}: {reason}")
                self.progress.advance(1)
            else:
                kept.append(item)
        return kept

    def _store_batch(
        self, collection: Collection, batch: EmbeddingBatch, vectors: np.ndarray, report: IngestReport
    ) -> Collection:
        if vectors.shape[0] != len(batch.texts):
            raise ProviderResponseError(f"{vectors.shape[0]} vectors came back for {len(batch.texts)} inputs")
        collection = self.store.record_dimension(collection, int(vectors.shape[1]))
        with self.store.session() as session:
            repo.store_embeddings(session, self.provider.vectors_key, dict(zip(batch.hashes, vectors, strict=True)))
            paid = Usage(self.provider.kind, self.provider.model, "ingest", self.collection_name, batch.tokens,
                         estimated=True)  # fmt: skip
            record_now(session, paid, self.store.prices())  # in the ledger exactly when its vectors are kept
            session.commit()
        self.crashpoints.hit("embedded_batch")
        report.tokens_embedded += batch.tokens
        report.embedding_requests += 1
        self.progress.embedded(len(batch.texts), batch.tokens)
        return collection

    def _write_documents(self, collection: Collection, window: list[Prepared]) -> None:
        added: list[int] = []
        removed: list[int] = []
        with self.store.session() as session:
            for item in window:
                new_ids, old_ids = repo.write_document(session, collection.id, item.new, item.replaces)
                added.extend(new_ids)
                removed.extend(old_ids)
            repo.forget_skips(session, collection.id, [item.new.key for item in window])
            self.crashpoints.hit("sql_write")
            session.commit()
        self.crashpoints.hit("index_update")
        self.store.indexes.follow(collection, added, removed, "when_due", lambda: self.crashpoints.hit("index_save"))

    def _prune(
        self, collection: Collection, everything: dict[str, repo.Known], seen: set[str], report: IngestReport
    ) -> None:
        gone = [known for key, known in everything.items() if key not in seen]
        if not gone:
            return
        with self.store.session() as session:
            removed = repo.delete_documents(session, [k.row_id for k in gone if not k.skipped])
            repo.delete_skips(session, [k.row_id for k in gone if k.skipped])
            session.commit()
        report.removed += sum(1 for k in gone if not k.skipped)
        self.store.indexes.follow(collection, removed=removed, publish="no")

    def _finish_index(self, collection: Collection) -> None:
        if collection.dimension is None:
            collection = self._dimension_from_stored_vectors(collection)
        # Publishes what is not yet published and fits the index type; an unchanged run publishes nothing
        # (servers would reload the whole index for nothing).
        self.store.indexes.follow(collection, publish="now", before_publish=lambda: self.crashpoints.hit("index_save"))

    def _dimension_from_stored_vectors(self, collection: Collection) -> Collection:
        """A collection whose chunks all reuse cached vectors (or was left that way by an older version)
        still gets its dimension, and so an index."""
        with self.store.session() as session:
            dimension = repo.collection_vector_dimension(session, collection)
        return self.store.record_dimension(collection, dimension) if dimension is not None else collection


@functools.cache
def _pdf_library() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"pypdf {version('pypdf')}"
    except PackageNotFoundError:
        return "pypdf"


def _new_files(
    batch: list[SourceDocument | SkippedDocument], known: dict[str, repo.Known], seen: set[str]
) -> list[SourceDocument]:
    """Files of ``batch`` under keys the collection does not hold: each may be a moved one."""
    files = [item for item in batch if isinstance(item, SourceDocument) and item.movable]
    return [item for item in files if item.key not in known and item.key not in seen]


def _batched(items: Iterable[SourceDocument | SkippedDocument], size: int) -> Iterator[list]:  # type: ignore[type-arg]
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
