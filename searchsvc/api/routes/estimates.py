"""What an ingestion would cost: documents, chunks, tokens, requests, time at the rate limit, price per model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ingest.estimate import estimate, estimate_path
from ingest.sources import record_document
from ingest.uploaded_source import uploaded_documents
from searchsvc.api.auth import READ
from searchsvc.api.deps import SvcDep
from searchsvc.api.job_models import EstimateBody, EstimateOut
from searchsvc.api.responses import ERRORS
from searchsvc.jobs.ingest_job import allowed_path, check_file_ids

router = APIRouter(prefix="/v1/ingest-estimates", tags=["ingestion jobs"], responses=ERRORS)


@router.post("", dependencies=READ, summary="Estimate an ingestion's cost", response_model=EstimateOut)
async def create_estimate(body: EstimateBody, svc: SvcDep) -> Any:
    """Nothing is written and nothing is sent to an embeddings API: documents a run would skip as unchanged,
    and texts already in the embedding cache, cost nothing. Give records, uploaded file ids or a server path
    (inside SEARCHSVC_INGEST_ROOTS), and the models to compare (default: the collection's)."""

    def run() -> dict[str, Any]:
        store, settings, models = svc.store, svc.settings, body.models or [None]
        if body.path is not None:
            path = allowed_path(body.path, settings.ingest_root_list)
            return estimate_path(store, settings, path, body.collection, models)
        if body.file_ids is not None:
            check_file_ids(store, body.file_ids)
            ids = list(dict.fromkeys(body.file_ids))
            return estimate(store, settings, body.collection, models, lambda: uploaded_documents(store, ids))
        records = body.records or []
        return estimate(store, settings, body.collection, models, lambda: [
            record_document(r.id, r.text, r.title, r.metadata, "api", None) for r in records
        ])  # fmt: skip

    return await run_in_threadpool(run)
