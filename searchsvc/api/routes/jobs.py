"""Ingestion jobs: start one, watch it, list them, cancel one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import SvcDep
from searchsvc.api.job_models import IngestJobBody, IngestJobList, IngestJobOut, JobStatus
from searchsvc.api.responses import ERRORS
from searchsvc.api.schemas import NAME_PATTERN
from searchsvc.errors import InvalidInputError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.ingest_job import allowed_path
from searchsvc.jobs.submit import submit_job
from searchsvc.jobs.view import job_json

router = APIRouter(prefix="/v1/ingest-jobs", tags=["ingestion jobs"], responses=ERRORS)

JobId = Annotated[str, Path(pattern=r"^job_[0-9a-f]{1,64}$", description="A job's id, as POST returned it.")]
NO_FILES_API = (
    "source.file_ids needs the Files API, which this server does not offer yet; give source.path "
    "(a folder, .jsonl file or document on the server)"
)


@router.post("", status_code=202, dependencies=WRITE, summary="Start an ingestion job", response_model=IngestJobOut)
async def create_job(body: IngestJobBody, svc: SvcDep) -> Any:
    """Queued at once; a runner takes it: Celery workers with SEARCHSVC_BROKER_URL (503 if the broker is
    unreachable), else a server's own (SEARCHSVC_JOB_WORKERS). Watch it with GET /v1/ingest-jobs/{id}.
    Paths must lie inside SEARCHSVC_INGEST_ROOTS (default: the server's folder)."""

    def run() -> dict[str, Any]:
        if body.source.path is None:
            raise InvalidInputError(NO_FILES_API)
        path = allowed_path(body.source.path, svc.settings.ingest_root_list)
        options = {"prune": body.prune, "include": body.include, "exclude": body.exclude}
        return submit_job(svc.store, svc.settings, body.collection, {"path": str(path)}, options)

    return await run_in_threadpool(run)


@router.get("", dependencies=READ, summary="List ingestion jobs, newest first", response_model=IngestJobList)
async def list_jobs(
    svc: SvcDep,
    status: JobStatus | None = None,
    collection: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            return {"object": "list", "data": [job_json(j) for j in jobs.listed(session, status, collection, limit)]}

    return await run_in_threadpool(run)


@router.get("/{job_id}", dependencies=READ, summary="One ingestion job and its progress", response_model=IngestJobOut)
async def get_job(job_id: JobId, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            return job_json(jobs.get(session, job_id))

    return await run_in_threadpool(run)


@router.delete("/{job_id}", dependencies=WRITE, summary="Cancel an ingestion job", response_model=IngestJobOut)
async def cancel_job(job_id: JobId, svc: SvcDep) -> Any:
    """A queued job is cancelled at once, a running one at its next progress report (within a second or
    one embedding request); what it committed stays. A finished job is returned unchanged."""

    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            return job_json(jobs.request_cancel(session, job_id))

    return await run_in_threadpool(run)
