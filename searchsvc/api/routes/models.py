"""GET /v1/models: the models this service can use, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ
from searchsvc.api.chat_completions import RAG_PREFIX
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS, ModelList
from searchsvc.providers.models import ModelInfo

router = APIRouter(prefix="/v1", tags=["models"], dependencies=READ, responses=ERRORS)


@router.get(
    "/models",
    summary="Models on offer: the local embedding model, the configured API's models, one rag: model per collection",
    description="OpenAI's list shape. `rag:<collection>` models answer from that collection through "
    "POST /v1/chat/completions. The API's list is cached for a minute; when it cannot be read, the "
    "local and rag: models are still listed and `api_error` says why.",
    response_model=ModelList,
    response_model_exclude_unset=True,
)
async def list_models(svc: SvcDep) -> Any:
    models, problem = await run_in_threadpool(svc.models.models)
    summaries = await run_in_threadpool(svc.store.summaries)
    rag = [rag_model(s.name, "generative" if svc.chat is not None else "extractive") for s in summaries]
    body: dict[str, Any] = {"object": "list", "data": [m.as_openai() for m in [*models, *rag]]}
    if problem is not None:
        body["api_error"] = problem
    return body


def rag_model(collection: str, mode: str) -> ModelInfo:
    """The chat model that answers from ``collection`` (``mode``: generative with a chat API, else extractive)."""
    return ModelInfo(RAG_PREFIX + collection, "rag", f"rag-{mode}", "searchsvc")
