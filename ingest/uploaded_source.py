"""Uploaded files (the Files API, kept in SQL) as documents: what an ingestion job with ``file_ids`` reads.

A file is a document keyed ``<file id>/<file name>`` (its title falls back to its name); a JSONL file is
one document per record, keyed ``<file id>/<record id>``. Content is read from SQL only when a document
must be parsed, so unchanged files cost one small query each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.document import ParsedDocument, SkippedDocument, SourceDocument
from ingest.fresh_collection import collection_for_run
from ingest.parsers import parse_bytes
from ingest.parsers.text import decode_text
from ingest.pipeline import IngestPipeline, IngestReport
from ingest.report import Progress
from ingest.sources import Found, parse_record_line
from searchsvc.errors import NotFoundError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage import files
from searchsvc.storage.schema import UploadedFile
from searchsvc.store import Store

UPLOADS_SOURCE = "uploads"  # the source every uploaded file's documents belong to


def uploaded_documents(
    store: Store, file_ids: list[str], attributes: dict[str, dict[str, Any]] | None = None
) -> Iterator[Found]:
    """Each file's documents, or the reason it has none (deleted since the job was queued); a file's
    ``attributes`` (a vector store's, filterable) join its documents' metadata."""
    for file_id in file_ids:
        extra = (attributes or {}).get(file_id) or {}
        with store.session() as session:
            try:
                row = files.get(session, file_id)
            except NotFoundError:
                yield SkippedDocument(file_id, "no such file: it was deleted after the job was queued")
                continue
        found = _records(store, row) if row.format == "jsonl" else iter([_file_document(store, row)])
        for item in found:
            if isinstance(item, SourceDocument):
                item.metadata = {**item.metadata, **extra}
            yield item


def _file_document(store: Store, row: UploadedFile) -> SourceDocument:
    file_id, fmt = row.id, row.format

    def load() -> ParsedDocument:
        return parse_bytes(_content(store, file_id), fmt)

    metadata = {"file_id": file_id, "filename": row.filename, "format": fmt}
    return SourceDocument(
        key=f"{file_id}/{row.filename}", source=UPLOADS_SOURCE, path=row.filename, content_hash=row.sha256,
        load=load, metadata=metadata,
    )  # fmt: skip


def _records(store: Store, row: UploadedFile) -> Iterator[Found]:
    text = decode_text(_content(store, row.id))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = parse_record_line(line, f"{row.filename} line {number}", UPLOADS_SOURCE, row.filename)
        if isinstance(found, SourceDocument):
            found.key = f"{row.id}/{found.key}"
            found.metadata = {**found.metadata, "file_id": row.id, "filename": row.filename}
        yield found


def _content(store: Store, file_id: str) -> bytes:
    with store.session() as session:
        return files.get(session, file_id, with_content=True).content


def ingest_uploaded(
    store: Store,
    provider: EmbeddingProvider,
    file_ids: list[str],
    collection: str,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    attributes: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Ingest uploaded files into ``collection`` (documents already there and unchanged are kept as they are)."""
    pipeline = IngestPipeline(
        store, provider, collection, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, progress=progress
    )
    with collection_for_run(store, collection, provider) as run:  # a failed first run leaves no collection
        found = uploaded_documents(store, file_ids, attributes)
        report = pipeline.run(found, source=UPLOADS_SOURCE, total=document_count(store, file_ids), report=report)
        run.failed = bool(report.failed)
    return report


def document_count(store: Store, file_ids: list[str]) -> int | None:
    """How many documents the files hold, when that is known without reading them (no JSONL among them)."""
    with store.session() as session:
        formats = files.formats(session, file_ids)
    return None if "jsonl" in formats.values() else len(file_ids)
