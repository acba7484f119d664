"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from searchsvc.api.auth import READ, key_scope
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import AccessOut, Readiness, Status
from searchsvc.storage import repository as repo

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up", response_model=Status)
async def healthz() -> Any:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database reachable, every index loaded, and each API the service needs reachable",
    description="APIs are checked from the outcome of recent calls, else by a cached `GET /models` "
    "(at most every SEARCHSVC_PROVIDER_PROBE_SECONDS): readiness never costs a paid call.",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the body says what is missing."}},
)
async def readyz(svc: SvcDep) -> Response:
    def check() -> dict[str, Any]:
        with svc.store.session() as session:
            session.execute(text("SELECT 1"))
            collections = [c for c, _, _ in repo.list_collections(session)]
        loaded = {c.name: svc.store.index(c).count() for c in collections if c.dimension is not None}
        providers = svc.provider_states(collections)
        down = [name for name, state in providers.items() if not state["reachable"]]
        status = "not ready" if down else "ready"
        return {"status": status, "indexes": loaded, "providers": providers, "unreachable": down}

    try:
        body = await run_in_threadpool(check)
    except Exception as exc:  # readiness reports any failure as not ready
        return JSONResponse({"status": "not ready", "error": type(exc).__name__}, status_code=503)
    return JSONResponse(body, status_code=503 if body["unreachable"] else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Metrics"}},
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/access", dependencies=READ, summary="What the API key sent may do", response_model=AccessOut)
async def access(request: Request) -> Any:
    """Whether keys are needed and the scope of the one sent (the web page hides write controls from a
    read-only key); an invalid key is a 401 like on every /v1 route."""
    keys: dict[str, str] = request.app.state.settings.service_keys
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return {"keys_required": bool(keys), "scope": key_scope(keys, token) if keys else "rw"}
