"""File batches of OpenAI's Vector Stores API (``client.vector_stores.file_batches``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import SvcDep
from searchsvc.api.openai_models import FileBatchObject, PageParams, VectorStoreFileList
from searchsvc.api.responses import ERRORS
from searchsvc.api.routes.vector_stores import FileStatus, StoreId, files_page
from searchsvc.api.vector_store_models import FileBatchCreate
from searchsvc.vector_stores import files as store_files
from searchsvc.vector_stores.batches import cancel_batch, describe_batch

router = APIRouter(prefix="/v1/vector_stores/{store_id}/file_batches", tags=["vector stores (OpenAI)"],
                   responses=ERRORS)  # fmt: skip

BatchId = Annotated[str, Path(pattern=r"^vsfb_[0-9a-f]{1,64}$", description="A batch's id, as POST returned it.")]


def _new_files(body: FileBatchCreate) -> list[store_files.NewFile]:
    """Both body forms: ``file_ids`` with shared attributes and chunking, or ``files`` each with its own."""
    shared = body.chunking_strategy.chunking() if body.chunking_strategy else store_files.Chunking()
    if body.file_ids is not None:
        return [store_files.NewFile(f, body.attributes or {}, shared) for f in dict.fromkeys(body.file_ids)]
    return [
        store_files.NewFile(
            f.file_id,
            f.attributes if f.attributes is not None else (body.attributes or {}),
            f.chunking_strategy.chunking() if f.chunking_strategy else shared,
        )
        for f in body.files or []
    ]


@router.post("", dependencies=WRITE, summary="Add up to 2,000 files at once", response_model=FileBatchObject)
async def create_batch(store_id: StoreId, body: FileBatchCreate, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        batch_id = store_files.new_batch_id()
        store_files.add_files(svc.store, svc.embedders, svc.settings, store_id, _new_files(body), batch_id)
        return describe_batch(svc.store, store_id, batch_id)

    return await run_in_threadpool(run)


@router.get("/{batch_id}", dependencies=READ, summary="Describe a file batch", response_model=FileBatchObject)
async def get_batch(store_id: StoreId, batch_id: BatchId, svc: SvcDep) -> Any:
    return await run_in_threadpool(describe_batch, svc.store, store_id, batch_id)


@router.post("/{batch_id}/cancel", dependencies=WRITE, summary="Cancel a file batch", response_model=FileBatchObject)
async def cancel(store_id: StoreId, batch_id: BatchId, svc: SvcDep) -> Any:
    """Files not yet ingested stay out (``cancelled``); those already in stay searchable."""
    return await run_in_threadpool(cancel_batch, svc.store, store_id, batch_id)


@router.get("/{batch_id}/files", dependencies=READ, summary="List a batch's files", response_model=VectorStoreFileList)
async def list_batch_files(
    store_id: StoreId, batch_id: BatchId, svc: SvcDep, page: PageParams, status: FileStatus = None
) -> Any:
    return await run_in_threadpool(files_page, svc, store_id, page, status, batch_id)
