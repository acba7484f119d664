"""What running an ingestion job means: the same pipeline as ``searchsvc ingest``, reporting to the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.runs import IngestReport, ingest_path
from ingest.uploaded_source import ingest_uploaded
from searchsvc.config import Settings
from searchsvc.errors import InvalidInputError, NotFoundError, PathNotAllowedError
from searchsvc.jobs.progress import JobProgress
from searchsvc.providers import EmbedderRegistry
from searchsvc.storage import files
from searchsvc.storage.schema import IngestJob
from searchsvc.store import Store


def allowed_path(raw: str, roots: list[Path]) -> Path:
    """A path given over HTTP, resolved, if it lies inside one of ``roots`` and exists."""
    if "\x00" in raw:
        raise InvalidInputError("the path holds a NUL character; give a folder, a .jsonl file or a document")
    path = Path(raw)
    path = (path if path.is_absolute() else roots[0] / path).resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        shown = ", ".join(str(root) for root in roots)
        raise PathNotAllowedError(
            f"{path} is outside the folders this server ingests from ({shown}); set SEARCHSVC_INGEST_ROOTS to allow it"
        )
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on the server; give a folder, a .jsonl file or a document")
    return path


def run_ingest_job(store: Store, embedders: EmbedderRegistry, settings: Settings, job: IngestJob,
                   progress: JobProgress) -> IngestReport:  # fmt: skip
    if "file_ids" in job.source:
        return _ingest_files(store, embedders, settings, job, progress)
    path = Path(job.source["path"])
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on the machine running this job")
    options: dict[str, Any] = job.options or {}
    embedder = embedders.for_existing_or_new(store.find_collection(job.collection))
    report = IngestReport(job.collection, embedder.kind, embedder.model)
    progress.watch(report)
    return ingest_path(
        store,
        embedder,
        path,
        job.collection,
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        prune=bool(options.get("prune")),
        include=options.get("include"),
        exclude=options.get("exclude"),
        progress=progress,
        max_file_bytes=settings.max_file_bytes,
        report=report,
    )


def _ingest_files(store: Store, embedders: EmbedderRegistry, settings: Settings, job: IngestJob,
                  progress: JobProgress) -> IngestReport:  # fmt: skip
    embedder = embedders.for_existing_or_new(store.find_collection(job.collection))
    report = IngestReport(job.collection, embedder.kind, embedder.model)
    progress.watch(report)
    chunk_tokens, chunk_overlap = chunking(settings, job)
    return ingest_uploaded(
        store, embedder, list(job.source["file_ids"]), job.collection, chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap, attributes=job.source.get("attributes"), progress=progress, report=report,
    )  # fmt: skip


def chunking(settings: Settings, job: IngestJob) -> tuple[int, int]:
    """The chunk size and overlap a job asked for (a vector store's static chunking), else the settings'."""
    options = job.options or {}
    return int(options.get("chunk_tokens") or settings.chunk_tokens), int(
        options.get("chunk_overlap", settings.chunk_overlap)
    )


def check_file_ids(store: Store, file_ids: list[str]) -> None:
    """Every file exists (else NotFoundError naming the missing ones)."""
    with store.session() as session:
        found = files.formats(session, file_ids)
    missing = [file_id for file_id in file_ids if file_id not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise NotFoundError(f"no uploaded file {shown}; upload files with POST /v1/files first").at("source.file_ids")
