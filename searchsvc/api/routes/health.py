"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from searchsvc.api.deps import SvcDep
from searchsvc.storage import repository as repo

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable and every index loaded")
async def readyz(svc: SvcDep) -> Response:
    def check() -> dict[str, Any]:
        with svc.store.session() as session:
            session.execute(text("SELECT 1"))
            collections = [c for c, _, _ in repo.list_collections(session)]
        loaded = {c.name: svc.store.index(c).count() for c in collections if c.dimension is not None}
        return {"status": "ready", "indexes": loaded}

    try:
        body = await run_in_threadpool(check)
    except Exception as exc:  # readiness reports any failure as not ready
        return JSONResponse({"status": "not ready", "error": type(exc).__name__}, status_code=503)
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
