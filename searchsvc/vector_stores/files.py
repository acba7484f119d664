"""Files in a vector store: added (an ingestion job brings each in), described, re-attributed, removed.

A file's attributes are kept with it and in the metadata of the documents it became, where search filters
read them; changing them rewrites that metadata at once, without re-embedding anything."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from searchsvc.config import Settings
from searchsvc.errors import InvalidInputError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.ingest_job import check_file_ids
from searchsvc.jobs.submit import submit_job
from searchsvc.providers import EmbedderRegistry
from searchsvc.storage import vector_stores as rows
from searchsvc.storage.cursor_pages import Page
from searchsvc.storage.schema import Collection, VectorStoreFile
from searchsvc.store import Store
from searchsvc.vector_stores.status import file_states


@dataclass(frozen=True)
class Chunking:
    """How a file is cut: ``auto`` (the server's structure-aware default) or a static size and overlap."""

    max_tokens: int | None = None  # None: auto
    overlap: int = 0

    def as_json(self, settings: Settings) -> dict[str, Any]:
        if self.max_tokens is None:
            return {"type": "static", "static": {"max_chunk_size_tokens": settings.chunk_tokens,
                                                 "chunk_overlap_tokens": settings.chunk_overlap}}  # fmt: skip
        return {"type": "static", "static": {"max_chunk_size_tokens": self.max_tokens,
                                             "chunk_overlap_tokens": self.overlap}}  # fmt: skip


@dataclass(frozen=True)
class NewFile:
    file_id: str
    attributes: dict[str, Any]
    chunking: Chunking


def add_files(store: Store, embedders: EmbedderRegistry, settings: Settings, name: str, files: list[NewFile],
              batch_id: str | None = None) -> None:  # fmt: skip
    """Record the files in the store and submit one ingestion job per chunking (one job for the usual batch)."""
    collection = store.get_collection(name)
    check_file_ids(store, [f.file_id for f in files])
    limit = embedders.for_collection(collection).limits.max_tokens_per_input
    for entry in files:
        if entry.chunking.max_tokens is not None and entry.chunking.max_tokens > limit:
            raise InvalidInputError(
                f"max_chunk_size_tokens {entry.chunking.max_tokens} is over the {limit} tokens this vector store's "
                f"embedding model ({collection.embedding_model}) takes per input: choose {limit} or fewer"
            ).at("chunking_strategy")
    with store.session() as session:
        for entry in files:
            rows.add_file(session, collection, entry.file_id, entry.attributes, _chunking_json(entry), batch_id)
        session.commit()
    for entry in files:  # a file added again: its new attributes apply to what it already became
        set_attributes(store, name, entry.file_id, entry.attributes)
    try:
        _submit(store, settings, collection, files)
    except Exception:
        with store.session() as session:
            for entry in files:
                rows.remove_file(session, collection, entry.file_id)
            session.commit()
        raise


def _chunking_json(entry: NewFile) -> dict[str, Any]:
    return {"max_tokens": entry.chunking.max_tokens, "overlap": entry.chunking.overlap}


def _submit(store: Store, settings: Settings, collection: Collection, files: list[NewFile]) -> None:
    by_chunking: dict[Chunking, list[NewFile]] = {}
    for entry in files:
        by_chunking.setdefault(entry.chunking, []).append(entry)
    for chunking, group in by_chunking.items():
        source = {"file_ids": [f.file_id for f in group], "attributes": {f.file_id: f.attributes for f in group}}
        options: dict[str, Any] = {"prune": False}
        if chunking.max_tokens is not None:
            options.update(chunk_tokens=chunking.max_tokens, chunk_overlap=chunking.overlap)
        job_id = submit_job(store, settings, collection.name, source, options)["id"]
        with store.session() as session:
            for entry in group:
                rows.file_row(session, collection, entry.file_id).job_id = job_id
            session.commit()


def set_attributes(store: Store, name: str, file_id: str, attributes: dict[str, Any]) -> None:
    """Replace the file's attributes, in its row and in the metadata of the documents it became."""
    collection = store.get_collection(name)
    with store.session() as session:
        row = rows.file_row(session, collection, file_id)
        previous = set(row.attributes or {})
        for document in rows.file_documents(session, collection, file_id):
            kept = {k: v for k, v in (document.doc_metadata or {}).items() if k not in previous}
            document.doc_metadata = {**kept, **attributes}
        row.attributes = attributes
        session.commit()


def remove_file(store: Store, name: str, file_id: str) -> None:
    """The file leaves the store: its documents are deleted (gone from search at once), its job cancelled
    if it brings in nothing else. The uploaded file itself stays."""
    collection = store.get_collection(name)
    with store.session() as session:
        row = rows.file_row(session, collection, file_id)
        job_id = row.job_id
        shared = job_id is not None and any(
            other.job_id == job_id and other.file_id != file_id for other in rows.all_files(session, collection)
        )
        if job_id is not None and not shared:
            jobs.request_cancel(session, job_id)
        keys = [document.key for document in rows.file_documents(session, collection, file_id)]
        rows.remove_file(session, collection, file_id)
        session.commit()
    for key in keys:
        store.delete_document(name, key)


def file_json(settings: Settings, collection: Collection, row: VectorStoreFile, state: Any) -> dict[str, Any]:
    """OpenAI's ``vector_store.file`` object."""
    chunking = Chunking(row.chunking.get("max_tokens"), row.chunking.get("overlap", 0))
    return {
        "id": row.file_id,
        "object": "vector_store.file",
        "created_at": row.created_at,
        "vector_store_id": collection.name,
        "status": state.status,
        "last_error": state.last_error,
        "usage_bytes": state.usage_bytes,
        "attributes": row.attributes or {},
        "chunking_strategy": chunking.as_json(settings),
    }


def describe_file(store: Store, settings: Settings, name: str, file_id: str) -> dict[str, Any]:
    collection = store.get_collection(name)
    with store.session() as session:
        row = rows.file_row(session, collection, file_id)
        return file_json(settings, collection, row, file_states(session, collection, [row])[file_id])


def listed_files(store: Store, settings: Settings, name: str, page: Page, status: str | None = None,
                 batch_id: str | None = None) -> tuple[list[dict[str, Any]], bool]:  # fmt: skip
    """A page of the store's files; with ``status``, only those in that state (filtered page by page)."""
    collection = store.get_collection(name)
    with store.session() as session:
        found, more = rows.files(session, collection, page, batch_id)
        states = file_states(session, collection, found)
        shown = [file_json(settings, collection, row, states[row.file_id]) for row in found]
    return [item for item in shown if status is None or item["status"] == status], more


def new_batch_id() -> str:
    return f"vsfb_{secrets.token_hex(12)}"


def parsed_text(store: Store, name: str, file_id: str) -> list[str]:
    """The text each of the file's documents became, rebuilt from its chunks (their overlaps taken once)."""
    collection = store.get_collection(name)
    with store.session() as session:
        rows.file_row(session, collection, file_id)
        return [_joined(rows.document_chunks(session, document.id))
                for document in rows.file_documents(session, collection, file_id)]  # fmt: skip


def _joined(chunks: list[tuple[int, int, str]]) -> str:
    """Chunks ``(start, end, text)`` in order of start, as one text: each adds what lies past the last end."""
    parts, covered = [], 0
    for start, end, text in chunks:
        if end <= covered:
            continue
        if parts and start > covered:
            parts.append("\n")  # text between chunks that no chunk holds (markup, blank lines)
        parts.append(text[max(0, covered - start) :] if start < covered else text)
        covered = end
    return "".join(parts)
