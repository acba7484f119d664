"""Collections and their documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import require_read, require_write
from searchsvc.api.deps import SvcDep
from searchsvc.api.schemas import CollectionBody, UpsertBody
from searchsvc.errors import NotFoundError
from searchsvc.storage import repository as repo
from searchsvc.storage.schema import Chunk, Document
from searchsvc.store import validate_collection_name

router = APIRouter(prefix="/v1/collections", tags=["collections"])


def _collection_json(
    collection: Any, documents: int | None = None, chunks: int | None = None, in_use: str | None = None
) -> dict[str, Any]:
    return {
        "name": collection.name,
        "provider": collection.provider,
        "embedding_model": collection.embedding_model,
        "dimension": collection.dimension,
        "index_type": collection.index_type,
        "index_in_use": in_use,
        "documents": documents,
        "chunks": chunks,
        "created_at": collection.created_at,
    }


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


@router.get("", dependencies=[Depends(require_read)], summary="List collections")
async def list_collections(svc: SvcDep) -> dict[str, Any]:
    def run() -> list[dict[str, Any]]:
        with svc.store.session() as session:
            rows = repo.list_collections(session)
        return [_collection_json(c, d, n, svc.store.index_type_in_use(c.name)) for c, d, n in rows]

    return {"collections": await run_in_threadpool(run)}


@router.post("", status_code=201, dependencies=[Depends(require_write)], summary="Create a collection")
async def create_collection(body: CollectionBody, svc: SvcDep) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        embedder = svc.embedders.for_new_collection(body.embedding_model)
        if body.embedding_model is not None and svc.store.find_collection(body.name) is None:
            svc.embedders.check_new_model(embedder)
        return _collection_json(svc.store.ensure_collection(body.name, embedder, body.index_type), 0, 0)

    return await run_in_threadpool(run)


@router.get("/{name}", dependencies=[Depends(require_read)], summary="One collection")
async def get_collection(name: str, svc: SvcDep) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        validate_collection_name(name)
        with svc.store.session() as session:
            for c, d, n in repo.list_collections(session):
                if c.name == name:
                    return _collection_json(c, d, n, svc.store.index_type_in_use(c.name))
        raise NotFoundError(f"no collection named {name!r}")

    return await run_in_threadpool(run)


@router.delete("/{name}", dependencies=[Depends(require_write)], summary="Delete a collection and its data")
async def delete_collection(name: str, svc: SvcDep) -> dict[str, Any]:
    await run_in_threadpool(svc.store.delete_collection, name)
    return {"deleted": name}


@router.post("/{name}/documents", dependencies=[Depends(require_write)], summary="Upsert documents")
async def upsert_documents(name: str, body: UpsertBody, svc: SvcDep) -> dict[str, Any]:
    """Concurrent upserts are written together (group commit); counts are this request's documents."""
    validate_collection_name(name)
    records = [(d.id, d.text, d.title, d.metadata) for d in body.documents]
    return await run_in_threadpool(svc.upserts.submit, name, records)


@router.get("/{name}/documents", dependencies=[Depends(require_read)], summary="List documents (paginated)")
async def list_documents(
    name: str,
    svc: SvcDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        collection = svc.store.get_collection(name)
        with svc.store.session() as session:
            docs, total = repo.list_documents(session, collection.id, offset, limit)
        return {"documents": [_document_json(d) for d in docs], "total": total, "offset": offset, "limit": limit}

    return await run_in_threadpool(run)


@router.get("/{name}/documents/{doc_id:path}", dependencies=[Depends(require_read)], summary="One document")
async def get_document(name: str, doc_id: str, svc: SvcDep) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        collection = svc.store.get_collection(name)
        with svc.store.session() as session:
            found = repo.get_document(session, collection.id, doc_id)
        if found is None:
            raise NotFoundError(f"no document {doc_id!r} in collection {name!r}")
        doc, chunks = found
        return {**_document_json(doc), "chunks": [_chunk_json(c) for c in chunks]}

    return await run_in_threadpool(run)


@router.delete("/{name}/documents/{doc_id:path}", dependencies=[Depends(require_write)], summary="Delete a document")
async def delete_document(name: str, doc_id: str, svc: SvcDep) -> dict[str, Any]:
    removed = await run_in_threadpool(svc.store.delete_document, name, doc_id)
    return {"deleted": doc_id, "chunks_removed": removed}
