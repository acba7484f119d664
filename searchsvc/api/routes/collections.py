"""Collections and their documents."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import (
    ERRORS,
    CollectionHealthOut,
    CollectionList,
    CollectionOut,
    Deleted,
    DocumentDeleted,
    DocumentDetail,
    DocumentPage,
    UpsertOut,
)
from searchsvc.api.schemas import CollectionBody, UpsertBody
from searchsvc.doctor import check_collection
from searchsvc.errors import NotFoundError
from searchsvc.storage import repository as repo
from searchsvc.storage.schema import Chunk, Document
from searchsvc.store import validate_collection_name
from searchsvc.textclean import clean_text

CONTAINING = "Only documents whose id, title or path contains this (case-insensitive)."
router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=ERRORS)


def _document_json(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.key,
        "title": doc.title,
        "path": doc.path,
        "source": doc.source,
        "metadata": doc.doc_metadata,
        "content_hash": doc.content_hash,
        "chunks": doc.chunk_count,
        "tokens": doc.token_count,
        "updated_at": doc.updated_at,
    }


def _chunk_json(chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.id,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
        "heading_path": chunk.heading_path,
        "start_char": chunk.start_char,
        "end_char": chunk.end_char,
        "line_start": chunk.line_start,
        "line_end": chunk.line_end,
        "page": chunk.page,
        "tokens": chunk.token_count,
    }


@router.get("", dependencies=READ, summary="List collections", response_model=CollectionList)
async def list_collections(svc: SvcDep) -> Any:
    summaries = await run_in_threadpool(svc.store.summaries)
    return {"collections": [asdict(s) for s in summaries]}


@router.post(
    "",
    status_code=201,
    dependencies=WRITE,
    summary="Create a collection (or return the existing one of that name and model)",
    response_model=CollectionOut,
)
async def create_collection(body: CollectionBody, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        embedder = svc.embedders.for_new_collection(body.embedding_model)
        if body.embedding_model is not None and svc.store.find_collection(body.name) is None:
            svc.embedders.check_new_model(embedder)
        svc.store.ensure_collection(body.name, embedder, body.index_type)
        return asdict(svc.store.summaries(body.name)[0])

    return await run_in_threadpool(run)


@router.get("/{name}", dependencies=READ, summary="One collection", response_model=CollectionOut)
async def get_collection(name: str, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        validate_collection_name(name)
        found = svc.store.summaries(name)
        if not found:
            raise NotFoundError(f"no collection named {name!r}")
        return asdict(found[0])

    return await run_in_threadpool(run)


@router.get("/{name}/health", dependencies=READ, summary="The doctor's verdict on one collection",
            response_model=CollectionHealthOut)  # fmt: skip
async def collection_health(name: str, svc: SvcDep) -> Any:
    """What `searchsvc doctor` reports for the collection (SQL against its vector index), without repairing."""

    def run() -> dict[str, Any]:
        validate_collection_name(name)
        collection = svc.store.find_collection(name)
        if collection is None:
            raise NotFoundError(f"no collection named {name!r}")
        return check_collection(svc.store, collection).as_dict()

    return await run_in_threadpool(run)


@router.delete("/{name}", dependencies=WRITE, summary="Delete a collection and its data", response_model=Deleted)
async def delete_collection(name: str, svc: SvcDep) -> Any:
    await run_in_threadpool(svc.store.delete_collection, name)
    return {"deleted": name}


@router.post("/{name}/documents", dependencies=WRITE, summary="Upsert documents", response_model=UpsertOut)
async def upsert_documents(name: str, body: UpsertBody, svc: SvcDep) -> Any:
    """Concurrent upserts are written together (group commit); counts are this request's documents."""
    validate_collection_name(name)
    records = [(d.id, d.text, d.title, d.metadata) for d in body.documents]
    return await run_in_threadpool(svc.upserts.submit, name, records)


@router.get("/{name}/documents", dependencies=READ, summary="List documents (paginated)", response_model=DocumentPage)
async def list_documents(
    name: str,
    svc: SvcDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    q: Annotated[
        str | None,
        Query(max_length=200, description=CONTAINING),
    ] = None,
) -> Any:
    def run() -> dict[str, Any]:
        collection = svc.store.get_collection(name)
        with svc.store.session() as session:
            docs, total = repo.list_documents(session, collection.id, offset, limit, clean_text(q) if q else None)
        return {"documents": [_document_json(d) for d in docs], "total": total, "offset": offset, "limit": limit}

    return await run_in_threadpool(run)


@router.get(
    "/{name}/documents/{doc_id:path}",
    dependencies=READ,
    summary="One document with its chunks",
    response_model=DocumentDetail,
)
async def get_document(name: str, doc_id: str, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        collection = svc.store.get_collection(name)
        with svc.store.session() as session:
            found = repo.get_document(session, collection.id, doc_id)
        if found is None:
            raise NotFoundError(f"no document {doc_id!r} in collection {name!r}")
        doc, chunks = found
        return {**_document_json(doc), "chunks": [_chunk_json(c) for c in chunks]}

    return await run_in_threadpool(run)


@router.delete(
    "/{name}/documents/{doc_id:path}", dependencies=WRITE, summary="Delete a document", response_model=DocumentDeleted
)
async def delete_document(name: str, doc_id: str, svc: SvcDep) -> Any:
    removed = await run_in_threadpool(svc.store.delete_document, name, doc_id)
    return {"deleted": doc_id, "chunks_removed": removed}
