"""A job split into batches of documents that any worker may take (the Celery mode; no Celery here).

plan: list the source's files (names only) and record batches of ``job_batch_documents`` in SQL.
batch: embed the batch's new text into the cache without the writer lock (``ingest.prefetch``), then
run the ordinary pipeline over the batch under the lock, waiting for its turn; record the batch done.
Every step is idempotent: a redelivered batch finds committed documents unchanged and paid-for
vectors cached. The batch that finds none left finishes the job (prune, status)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from ingest.batch_steps import prefetch, prune_source
from ingest.document import SkippedDocument, SourceDocument
from ingest.fresh_collection import discard_if_empty
from ingest.pipeline import IngestPipeline, IngestReport
from ingest.report import NoProgress, Progress
from ingest.sources import Found, candidate_files, discover, file_document, resolve_source, source_root
from ingest.uploaded_source import UPLOADS_SOURCE, uploaded_documents
from searchsvc.config import Settings
from searchsvc.errors import InvalidInputError, SearchsvcError
from searchsvc.jobs import batches
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.ingest_job import chunking
from searchsvc.jobs.progress import FLUSH_SECONDS, JobCancelled, report_counts
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage.schema import Collection, IngestJob
from searchsvc.store import Store

CREATED_COLLECTION = "_created_collection_id"  # in a job's options: its plan created the collection (not shown)
SUMMARY_SECONDS = 2.0  # how often a running batch adds its counts so far to the job's (its own row: FLUSH_SECONDS)
LOCK_WAIT_SECONDS = 3600.0  # a batch waits this long for its turn to write (other batches write quickly)


def plan_job(store: Store, embedders: EmbedderRegistry, settings: Settings, job_id: str, worker: str) -> list[int]:
    """Record the job's batches and mark it running; the numbers of batches still to do."""
    with store.session() as session:
        job = jobs.get(session, job_id)
        if job.status != "queued":  # ended, or planned already: a lost batch message is the watchdog's to resend
            return []
        if job.cancel_requested:
            raise JobCancelled(job_id)
        if not jobs.claim_plan(session, job_id, worker):
            return []  # another worker is planning it (a resent plan); if that one dies, the watchdog resends
        target, created = store.open_collection(
            job.collection, embedders.for_existing_or_new(store.find_collection(job.collection))
        )
        if created:  # a job that fails with nothing stored removes it again (discard_created_collection)
            job.options = {**(job.options or {}), CREATED_COLLECTION: target.id}
            session.commit()
        if "file_ids" in job.source:  # uploaded files: batches of file ids
            file_ids, size = list(job.source["file_ids"]), settings.job_batch_documents
            planned: list[list[str]] = [file_ids[i : i + size] for i in range(0, len(file_ids), size)]
            total: int | None = None
        else:
            found = _plan_paths(store, session, settings, job, target, worker)
            if found is None:
                discard_created_collection(store, job_id)
                return []
            planned, total = found
        batches.plan(session, job_id, planned)
        jobs.start_distributed(session, job_id, worker, total)
        return batches.pending(session, job_id)


def _plan_paths(store: Store, session: Session, settings: Settings, job: IngestJob, target: Collection,
                worker: str) -> tuple[list[list[str]], int | None] | None:  # fmt: skip
    """A folder's files in batches (names relative to it); another source is one batch. None: gone."""
    path = Path(job.source["path"])
    if not path.exists():
        jobs.finish(session, job.id, None, "failed", f"{path} does not exist on the worker ({worker})")
        return None
    resolve_source(store, target, path)  # the source's label exists before any batch runs: batches run side by side
    root = source_root(path)
    options = job.options or {}
    if root.kind == "folder" and root.only is None:
        include, exclude = options.get("include"), options.get("exclude")
        files = [rel for _, rel in candidate_files(root.location, include, exclude, False)]
        size = settings.job_batch_documents
        return [files[i : i + size] for i in range(0, len(files), size)] or [[]], len(files)
    return [[]], (1 if root.kind == "file" else None)  # one batch: the whole source


def discard_created_collection(store: Store, job_id: str) -> None:
    """After a job failed or was cancelled: the collection its plan created goes again if it holds no document
    (``ingest.fresh_collection``; a worker killed before the job was marked failed leaves it, empty)."""
    with store.session() as session:
        job = jobs.get(session, job_id)
        created, name = (job.options or {}).get(CREATED_COLLECTION), job.collection
    found = store.find_collection(name) if created is not None else None
    if found is not None and found.id == created:  # not one created again since by another run
        discard_if_empty(store, found)


class BatchBusy(Exception):
    """Another worker is running this batch right now (a duplicate message): try again later."""


class WorkersDiedError(SearchsvcError):
    """Every worker that took a batch died while running it: the job fails instead of killing more."""


def run_batch(store: Store, embedders: EmbedderRegistry, settings: Settings, job_id: str, number: int,
              worker: str) -> bool:  # fmt: skip
    """Ingest one batch; True when no batch of the job is left (the caller then finishes the job)."""
    with store.session() as session:
        job = jobs.get(session, job_id)
        if job.status in jobs.TERMINAL:
            return False
        if job.cancel_requested:
            raise JobCancelled(job_id)
        batch = batches.take(session, job_id, number, worker, settings.job_stale_seconds)
        if batch == "busy":
            raise BatchBusy(f"batch {number} of {job_id}")
        paths = None if isinstance(batch, str) else list(batch.paths)
        if not isinstance(batch, str) and batch.attempts > jobs.MAX_ATTEMPTS:  # taken from a silent worker again
            raise WorkersDiedError(_workers_died(batch.attempts - 1, paths or []))
    if paths is None:
        return _all_done(store, job_id)
    report = _ingest_batch(store, embedders, settings, job, paths, number, worker)
    with store.session() as session:
        done = report.added + report.changed + report.renamed + report.unchanged + len(report.problems())
        counts = report_counts(report, done)
        batches.done(session, job_id, number, counts, report.problems())
        batches.summarise(session, job_id)
    return _all_done(store, job_id)


def _workers_died(deaths: int, paths: list[str]) -> str:
    files = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (
        f"{deaths} workers stopped while running it (killed, or out of memory: see their logs); its files: "
        f"{files or 'the whole source'}. Remove the culprit or lower SEARCHSVC_JOB_BATCH_DOCUMENTS, then submit "
        "the job again"
    )


def _ingest_batch(store: Store, embedders: EmbedderRegistry, settings: Settings, job: IngestJob, paths: list[str],
                  number: int, worker: str) -> IngestReport:  # fmt: skip
    embedder = embedders.for_existing_or_new(store.find_collection(job.collection))
    pipeline = _pipeline(store, embedder, settings, job, BatchProgress(store, job.id, number, worker))
    if "file_ids" in job.source:  # uploaded files: the batch's ids
        uploaded = list(uploaded_documents(store, paths, job.source.get("attributes")))
        return _two_passes(pipeline, lambda: uploaded, UPLOADS_SOURCE, prune=False)
    path = Path(job.source["path"])
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on this worker")
    root, label = resolve_source(store, store.ensure_collection(job.collection, embedder), path)
    options = job.options or {}

    def found() -> Iterator[SourceDocument | SkippedDocument]:
        if not paths:
            yield from discover(path, options.get("include"), options.get("exclude"), settings.max_file_bytes,
                                label=label, root=root)  # fmt: skip
        for rel in paths:
            yield file_document(root.location / rel, f"{label}/{rel}", label, settings.max_file_bytes)

    # A batch's files are hashed once, for both passes (a whole source, maybe a large JSONL, streams twice).
    listed = list(found()) if paths else None
    whole = not paths and root.only is None and bool(options.get("prune"))  # a one-batch source prunes itself
    return _two_passes(pipeline, (lambda: listed) if listed else found, label, prune=whole)


def _two_passes(pipeline: IngestPipeline, found: Callable[[], Iterable[Found]], source: str,
                prune: bool) -> IngestReport:  # fmt: skip
    """Embed the new text into the cache without the lock (workers embed side by side), then write under it."""
    spent = prefetch(pipeline, found())
    report = pipeline.run(found(), source=source, prune=prune, total=None)  # under the lock: writes only
    report.chunks_cached = max(0, report.chunks_cached - spent.chunks)  # cached before the job, not by it
    report.tokens_embedded += spent.tokens_embedded
    report.embedding_requests += spent.embedding_requests
    report.batches_split += spent.batches_split
    return report


def _pipeline(store: Store, embedder: EmbeddingProvider, settings: Settings, job: IngestJob,
              progress: Progress | None = None) -> IngestPipeline:  # fmt: skip
    chunk_tokens, chunk_overlap = chunking(settings, job)
    return IngestPipeline(store, embedder, job.collection, chunk_tokens=chunk_tokens, progress=progress,
                          chunk_overlap=chunk_overlap, lock_wait_seconds=LOCK_WAIT_SECONDS)  # fmt: skip


class BatchProgress(NoProgress):
    """A running batch's progress: what it has embedded and written so far goes to its row, and the job's
    sums, every FLUSH_SECONDS (so a job's counts move within a batch, not only between batches); the first
    report after the job was cancelled stops the batch (JobCancelled)."""

    def __init__(self, store: Store, job_id: str, number: int, worker: str) -> None:
        self.store, self.job_id, self.number, self.worker = store, job_id, number, worker
        self.counts: Counter[str] = Counter()
        self._flushed = self._summarised = 0.0

    def advance(self, documents: int) -> None:
        self.counts["documents_done"] += documents
        self._flush()

    def embedded(self, chunks: int, tokens: int) -> None:
        self.counts.update(chunks=chunks, tokens=tokens, requests=1 if chunks else 0)  # 0: a wait's report
        self._flush()

    def _flush(self) -> None:
        if time.monotonic() - self._flushed < FLUSH_SECONDS:
            return
        self._flushed = time.monotonic()
        with self.store.session() as session:
            job = jobs.get(session, self.job_id)
            if job.cancel_requested or job.status in jobs.TERMINAL:  # cancelled, or failed by another batch
                raise JobCancelled(self.job_id)
            mine = batches.running(session, self.job_id, self.number, self.worker, dict(self.counts))
            if mine and time.monotonic() - self._summarised >= SUMMARY_SECONDS:
                self._summarised = time.monotonic()
                batches.summarise(session, self.job_id)


def _all_done(store: Store, job_id: str) -> bool:
    with store.session() as session:
        return not batches.pending(session, job_id)


def finish_job(store: Store, embedders: EmbedderRegistry, settings: Settings, job_id: str, worker: str) -> None:
    """After the last batch: prune what the source no longer has (if asked), then mark the job succeeded."""
    with store.session() as session:
        job = jobs.get(session, job_id)
        if job.status in jobs.TERMINAL:
            return
        if job.cancel_requested:
            raise JobCancelled(job_id)
        keys = batches.planned_paths(session, job_id)
    if (job.options or {}).get("prune") and all(keys):
        embedder = embedders.for_existing_or_new(store.find_collection(job.collection))
        target = store.ensure_collection(job.collection, embedder)
        _, label = resolve_source(store, target, Path(job.source["path"]))
        prune_source(
            _pipeline(store, embedder, settings, job),
            label,
            {f"{label}/{rel}" for batch in keys for rel in batch},
        )
    with store.session() as session:
        batches.summarise(session, job_id)
        jobs.finish(session, job_id, None, "succeeded")
    del worker  # the job is nobody's in particular: any worker may finish it


def stalled_batches(store: Store, settings: Settings) -> list[tuple[str, int]]:
    """Batches of running jobs that nobody has worked on for ``job_stale_seconds`` (their messages were lost,
    or every worker died): the caller sends them again; each job's heartbeat is touched so it is not resent
    before the next period."""
    with store.session() as session:
        found = batches.stalled(session, settings.job_stale_seconds)
        for job_id in {job_id for job_id, _ in found}:
            jobs.touch(session, job_id)
    return found
