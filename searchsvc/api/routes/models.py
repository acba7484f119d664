"""GET /v1/models: the models this service can use, in OpenAI's list shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from searchsvc.api.auth import READ
from searchsvc.api.chat_completions import RAG_PREFIX
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.responses import ERRORS, ModelList, ModelOut
from searchsvc.errors import ModelNotFoundError
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
    models, problem = await run_in_threadpool(_on_offer, svc)
    body: dict[str, Any] = {"object": "list", "data": [m.as_openai() for m in models]}
    if problem is not None:
        body["api_error"] = problem
    return body


@router.get(
    "/models/{model_id:path}",
    summary="One model on offer",
    description="OpenAI's `model` object (the SDK's `models.retrieve`); ids may contain `/`.",
    response_model=ModelOut,
)
async def get_model(model_id: str, svc: SvcDep) -> Any:
    models, problem = await run_in_threadpool(_on_offer, svc)
    for model in models:
        if model.id == model_id:
            return model.as_openai()
    why = f" (the API's list could not be read: {problem})" if problem else ""
    raise ModelNotFoundError(f"no model {model_id!r} is on offer{why}; GET /v1/models lists them")


def _on_offer(svc: Services) -> tuple[list[ModelInfo], str | None]:
    models, problem = svc.models.models()
    mode = "generative" if svc.chat is not None else "extractive"
    return [*models, *(rag_model(name, mode) for name in svc.store.collection_names())], problem


def rag_model(collection: str, mode: str) -> ModelInfo:
    """The chat model that answers from ``collection`` (``mode``: generative with a chat API, else extractive)."""
    return ModelInfo(RAG_PREFIX + collection, "rag", f"rag-{mode}", "searchsvc")
