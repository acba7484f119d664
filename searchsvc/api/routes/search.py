"""POST /v1/search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS, SearchOut
from searchsvc.api.schemas import SearchBody
from searchsvc.search import search

router = APIRouter(prefix="/v1", tags=["search"], dependencies=READ, responses=ERRORS)


@router.post("/search", summary="Nearest chunks to a query, with scores and locations", response_model=SearchOut)
async def search_route(body: SearchBody, request: Request, svc: SvcDep) -> Any:
    name = svc.collection_name(body.collection)

    def run() -> Any:
        embedder = svc.embedder_for(name)
        return search(
            svc.store,
            embedder,
            name,
            body.query,
            body.k,
            group_by=body.group_by,
            filter=body.filter,
            min_score=body.min_score,
            mode=body.mode,
        ), embedder

    result, embedder = await run_in_threadpool(run)
    metrics = request.app.state.metrics
    metrics.embedding_calls.labels(embedder.kind).inc()
    metrics.embedding_tokens.labels(embedder.kind).inc(embedder.tokenizer.count([body.query])[0])
    return {
        "collection": name,
        "mode": result.mode,
        "results": [hit.as_dict() for hit in result.hits],
        "timings_ms": result.timings_ms,
    }
