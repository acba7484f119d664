"""Ingestion runs by kind of input: a folder, a JSONL file or one file; or records (API upserts)."""

from __future__ import annotations

from pathlib import Path

from ingest.fresh_collection import collection_for_run
from ingest.pipeline import IngestPipeline, IngestReport, Progress
from ingest.sources import DEFAULT_MAX_FILE_BYTES, count_candidates, discover, record_document, resolve_source
from searchsvc.crashpoints import NO_CRASHES, Crashpoints
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.store import Store

__all__ = ["IngestReport", "ingest_path", "ingest_records"]


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
    report: IngestReport | None = None,
) -> IngestReport:
    """Ingest a folder, a JSONL file or one document into ``collection``.

    Documents are keyed by the source's label (its folder's name, or as much of its path as tells it
    apart from other sources of the collection) and their path inside it. ``prune`` applies to
    folders and JSONL files; a single file is ingested as part of the nearest folder above it that was
    ingested before (else its own folder), leaving the rest alone.
    """
    with collection_for_run(store, collection, provider) as run:  # a failed first run leaves no collection
        root, label = resolve_source(store, run.collection, path)
        pipeline = IngestPipeline(
            store,
            provider,
            collection,
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            progress=progress,
            crashpoints=crashpoints,
        )
        found = discover(path, include, exclude, max_file_bytes, label=label, root=root)
        total = count_candidates(path, include, exclude)
        report = pipeline.run(found, source=label, prune=prune and root.only is None, total=total, report=report)
        run.failed = bool(report.failed)
    return report


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
    """Upsert ``(id, text, title, metadata)`` records through the same pipeline as files; ``source`` names
    where they come from (registered as the location ``source:``, so no folder can take its label)."""
    with collection_for_run(store, collection, provider) as run:  # a failed first run leaves no collection
        source = store.source_label(run.collection, f"{source}:", [source])
        pipeline = IngestPipeline(
            store,
            provider,
            collection,
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            lock_wait_seconds=lock_wait_seconds,
        )
        found = [record_document(rid, text, title, metadata, source, None) for rid, text, title, metadata in records]
        report = pipeline.run(found, source=source, prune=False, total=len(found))
        run.failed = bool(report.failed)
    return report
