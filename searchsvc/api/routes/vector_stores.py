"""OpenAI's Vector Stores API (``client.vector_stores``): stores, their files, and search. A vector store
is a collection (its id the collection's name); file batches are in ``vector_store_batches.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.openai_models import (
    ID_PATTERN,
    Deleted,
    FileContentPage,
    PageParams,
    SearchPage,
    VectorStoreFileList,
    VectorStoreFileObject,
    VectorStoreList,
    VectorStoreObject,
    list_body,
)
from searchsvc.api.responses import ERRORS
from searchsvc.api.schemas import NAME_PATTERN
from searchsvc.api.vector_store_models import FileCreate, FileUpdate, SearchBody, VectorStoreCreate, VectorStoreUpdate
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.ingest_job import check_file_ids
from searchsvc.storage import vector_stores as rows
from searchsvc.storage.cursor_pages import Page
from searchsvc.vector_stores import files as store_files
from searchsvc.vector_stores import stores
from searchsvc.vector_stores.searching import result_json, rewritten_queries, search_store

router = APIRouter(prefix="/v1/vector_stores", tags=["vector stores (OpenAI)"], responses=ERRORS)

StoreId = Annotated[str, Path(pattern=NAME_PATTERN, description="A vector store's id: its collection's name.")]
FileId = Annotated[str, Path(pattern=ID_PATTERN, description="An uploaded file's id.")]
FileStatus = Annotated[str | None, Query(alias="filter", pattern="^(in_progress|completed|failed|cancelled)$")]


def _fields(body: VectorStoreCreate | VectorStoreUpdate) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True, include={"name", "metadata", "expires_after"})
    if "metadata" in given:
        given["store_metadata"] = given.pop("metadata") or {}
    return given


@router.post(
    "", dependencies=WRITE, summary="Create a vector store (a new collection)", response_model=VectorStoreObject
)
async def create_store(body: VectorStoreCreate, svc: SvcDep) -> Any:
    """A collection embedded with the server's default model; ``file_ids`` are ingested by one job."""

    def run() -> dict[str, Any]:
        if body.file_ids:
            check_file_ids(svc.store, body.file_ids)
        collection = stores.create_store(svc.store, svc.embedders, _fields(body))
        if body.file_ids:
            chunking = body.chunking_strategy.chunking() if body.chunking_strategy else store_files.Chunking()
            new = [store_files.NewFile(file_id, {}, chunking) for file_id in dict.fromkeys(body.file_ids)]
            store_files.add_files(svc.store, svc.embedders, svc.settings, collection.name, new)
        return stores.describe(svc.store, collection.name)

    return await run_in_threadpool(run)


@router.get("", dependencies=READ, summary="List vector stores (every collection)", response_model=VectorStoreList)
async def list_stores(svc: SvcDep, page: PageParams) -> Any:
    def run() -> dict[str, Any]:
        found, more = stores.listed(svc.store, page)
        return list_body(found, more)

    return await run_in_threadpool(run)


@router.get("/{store_id}", dependencies=READ, summary="Describe a vector store", response_model=VectorStoreObject)
async def get_store(store_id: StoreId, svc: SvcDep) -> Any:
    return await run_in_threadpool(stores.describe, svc.store, store_id)


@router.post("/{store_id}", dependencies=WRITE, summary="Update a vector store", response_model=VectorStoreObject)
async def update_store(store_id: StoreId, body: VectorStoreUpdate, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        stores.update_store(svc.store, store_id, _fields(body))
        return stores.describe(svc.store, store_id)

    return await run_in_threadpool(run)


@router.delete(
    "/{store_id}", dependencies=WRITE, summary="Delete a vector store and its collection", response_model=Deleted
)
async def delete_store(store_id: StoreId, svc: SvcDep) -> Any:
    """Its collection goes, with every document and vector; its running ingestion jobs are cancelled first.
    Uploaded files stay."""

    def run() -> dict[str, Any]:
        collection = svc.store.get_collection(store_id)
        with svc.store.session() as session:
            for job_id in {row.job_id for row in rows.all_files(session, collection) if row.job_id}:
                jobs.request_cancel(session, job_id)
        svc.store.delete_collection(store_id)
        return {"id": store_id, "object": "vector_store.deleted", "deleted": True}

    return await run_in_threadpool(run)


@router.post("/{store_id}/search", dependencies=READ, summary="Search a vector store", response_model=SearchPage)
async def search(store_id: StoreId, body: SearchBody, svc: SvcDep) -> Any:
    """Hybrid search (meaning and words) over the store's chunks; scores 0..1 (see the schema)."""
    queries = [body.query] if isinstance(body.query, str) else list(body.query)

    def run() -> dict[str, Any]:
        collection = stores.usable(svc.store, store_id)
        searched = rewritten_queries(svc.chat, queries) if body.rewrite_query else queries
        threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
        found = search_store(svc.store, svc.embedder_for(store_id), store_id, searched, body.filters,
                             body.max_num_results, threshold)  # fmt: skip
        with svc.store.session() as session:
            named = {str(hit.metadata.get("file_id")) for hit, _ in found}
            attributes = rows.attributes_of(session, collection, named)
        data = [result_json(hit, score, attributes.get(str(hit.metadata.get("file_id")))) for hit, score in found]
        return {"object": "vector_store.search_results.page", "search_query": searched, "data": data,
                "has_more": False, "next_page": None}  # fmt: skip

    return await run_in_threadpool(run)


@router.post("/{store_id}/files", dependencies=WRITE, summary="Add a file", response_model=VectorStoreFileObject)
async def add_file(store_id: StoreId, body: FileCreate, svc: SvcDep) -> Any:
    """Status ``in_progress`` until its ingestion job has brought it in (poll until ``completed`` or ``failed``)."""

    def run() -> dict[str, Any]:
        chunking = body.chunking_strategy.chunking() if body.chunking_strategy else store_files.Chunking()
        new = store_files.NewFile(body.file_id, body.attributes or {}, chunking)
        store_files.add_files(svc.store, svc.embedders, svc.settings, store_id, [new])
        return store_files.describe_file(svc.store, svc.settings, store_id, body.file_id)

    return await run_in_threadpool(run)


@router.get("/{store_id}/files", dependencies=READ, summary="List a store's files", response_model=VectorStoreFileList)
async def list_files(store_id: StoreId, svc: SvcDep, page: PageParams, status: FileStatus = None) -> Any:
    """``filter`` keeps the files in one state (applied within each page: a page may hold fewer than ``limit``)."""
    return await run_in_threadpool(files_page, svc, store_id, page, status)


def files_page(svc: Services, store_id: str, page: Page, status: str | None, batch_id: str | None = None) -> Any:
    found, more = store_files.listed_files(svc.store, svc.settings, store_id, page, status, batch_id)
    return list_body(found, more)


@router.get("/{store_id}/files/{file_id}", dependencies=READ, summary="Describe a store's file",
            response_model=VectorStoreFileObject)  # fmt: skip
async def get_file(store_id: StoreId, file_id: FileId, svc: SvcDep) -> Any:
    return await run_in_threadpool(store_files.describe_file, svc.store, svc.settings, store_id, file_id)


@router.post("/{store_id}/files/{file_id}", dependencies=WRITE, summary="Replace a file's attributes",
             response_model=VectorStoreFileObject)  # fmt: skip
async def update_file(store_id: StoreId, file_id: FileId, body: FileUpdate, svc: SvcDep) -> Any:
    """Applied at once to what the file became (filters see them now); nothing is embedded again."""

    def run() -> dict[str, Any]:
        store_files.set_attributes(svc.store, store_id, file_id, body.attributes or {})
        return store_files.describe_file(svc.store, svc.settings, store_id, file_id)

    return await run_in_threadpool(run)


@router.delete("/{store_id}/files/{file_id}", dependencies=WRITE, summary="Remove a file from the store",
               response_model=Deleted)  # fmt: skip
async def remove_file(store_id: StoreId, file_id: FileId, svc: SvcDep) -> Any:
    """Its chunks leave search at once; the uploaded file stays (DELETE /v1/files/{id} removes it everywhere)."""

    def run() -> dict[str, Any]:
        store_files.remove_file(svc.store, store_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    return await run_in_threadpool(run)


@router.get("/{store_id}/files/{file_id}/content", dependencies=READ, summary="A store's file as parsed text",
            response_model=FileContentPage)  # fmt: skip
async def file_content(store_id: StoreId, file_id: FileId, svc: SvcDep) -> Any:
    """The text the file became, one part per document, in the order the documents were written."""

    def run() -> dict[str, Any]:
        parts = store_files.parsed_text(svc.store, store_id, file_id)
        return {"object": "vector_store.file_content.page", "data": [{"type": "text", "text": t} for t in parts],
                "has_more": False, "next_page": None}  # fmt: skip

    return await run_in_threadpool(run)
