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
from searchsvc.jobs.ingest_job import allowed_path, check_file_ids
from searchsvc.jobs.submit import submit_job
from searchsvc.jobs.view import job_json

router = APIRouter(prefix="/v1/ingest-jobs", tags=["ingestion jobs"], responses=ERRORS)

JobId = Annotated[str, Path(pattern=r"^job_[0-9a-f]{1,64}$", description="A job's id, as POST returned it.")]
PATH_ONLY = "prune, include and exclude apply to source.path; uploaded files (source.file_ids) are added, never pruned"


@router.post("", status_code=202, dependencies=WRITE, summary="Start an ingestion job", response_model=IngestJobOut)
async def create_job(body: IngestJobBody, svc: SvcDep) -> Any:
    """Queued at once; a runner takes it: Celery workers with SEARCHSVC_BROKER_URL (503 if the broker is
    unreachable), else a server's own (SEARCHSVC_JOB_WORKERS). Watch it with GET /v1/ingest-jobs/{id}.
    Paths must lie inside SEARCHSVC_INGEST_ROOTS (default: the server's folder)."""

    def run() -> dict[str, Any]:
        options = {"prune": body.prune, "include": body.include, "exclude": body.exclude}
        if body.source.file_ids is not None:
            if body.prune or body.include or body.exclude:
                raise InvalidInputError(PATH_ONLY)
            check_file_ids(svc.store, body.source.file_ids)
            source: dict[str, Any] = {"file_ids": list(dict.fromkeys(body.source.file_ids))}
        else:
            source = {"path": str(allowed_path(str(body.source.path), svc.settings.ingest_root_list))}
        return submit_job(svc.store, svc.settings, body.collection, source, options)

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
