"""GET /v1/models: the models this service can use, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS, ModelList

router = APIRouter(prefix="/v1", tags=["models"], dependencies=READ, responses=ERRORS)


@router.get(
    "/models",
    summary="Models on offer: the local embedding model and the configured API's models",
    description="OpenAI's list shape. The API's list is cached for a minute; when it cannot be read, the "
    "local model is still listed and `api_error` says why.",
    response_model=ModelList,
    response_model_exclude_unset=True,
)
async def list_models(svc: SvcDep) -> Any:
    models, problem = await run_in_threadpool(svc.models.models)
    body: dict[str, Any] = {"object": "list", "data": [m.as_openai() for m in models]}
    if problem is not None:
        body["api_error"] = problem
    return body
