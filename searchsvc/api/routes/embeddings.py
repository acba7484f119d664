"""``POST /v1/embeddings`` in OpenAI's shape: other services embed with the very model a collection was
built with (``model`` = a collection's name, i.e. a vector store id), the local model, or the API's."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from searchsvc.api.auth import READ
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.responses import ERRORS
from searchsvc.api.schemas import NAME_PATTERN
from searchsvc.api.vector_store_models import NO_NUL, Body
from searchsvc.errors import InvalidInputError, ProviderError
from searchsvc.providers import REFUSED_MODEL_STATUSES
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.usage import Usage

router = APIRouter(prefix="/v1", tags=["embeddings (OpenAI)"], dependencies=READ, responses=ERRORS)

MAX_INPUTS = 2048
Text = Annotated[str, Field(min_length=1, pattern=NO_NUL)]


class EmbeddingsBody(Body):
    input: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_INPUTS)] | list[int] | list[list[int]]
    model: str = Field(min_length=1, max_length=256, pattern=NO_NUL)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=256)


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 values.")


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: dict[str, int]


@router.post("/embeddings", summary="Embed texts (OpenAI's shape)", response_model=EmbeddingList)
async def embeddings(body: EmbeddingsBody, request: Request, svc: SvcDep) -> Any:
    """``model``: a collection's name (its model), ``all-MiniLM-L6-v2`` (local), or a model of the configured
    API. Texts only: token id arrays are refused, since searchsvc's models do not share one tokenizer."""
    texts = _texts(body.input)

    def run() -> tuple[EmbeddingProvider, np.ndarray, int]:
        provider, collection = _provider(svc, body.model)
        counts = provider.tokenizer.count(texts)
        _check_sizes(provider, counts, body.dimensions)
        vectors = _embed(provider, texts)
        if svc.ledger is not None:
            svc.ledger.record(
                Usage(provider.kind, provider.model, "embeddings", collection, sum(counts), estimated=True)
            )
        return provider, vectors, sum(counts)

    provider, vectors, tokens = await run_in_threadpool(run)
    request.app.state.metrics.embedding_calls.labels(provider.kind).inc()
    request.app.state.metrics.embedding_tokens.labels(provider.kind).inc(tokens)
    data = [{"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)} for i, v in
            enumerate(vectors)]  # fmt: skip
    return {"object": "list", "data": data, "model": provider.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


def _texts(given: Any) -> list[str]:
    if isinstance(given, str):
        return [given]
    if not given:
        raise InvalidInputError("input holds no text: send a string or a list of 1 to 2,048 strings").at("input")
    if all(isinstance(item, str) for item in given):
        return list(given)
    raise InvalidInputError(
        "input must be text (a string or a list of strings): token ids are not accepted, since searchsvc's "
        "embedding models do not share one tokenizer"
    ).at("input")


def _provider(svc: Services, model: str) -> tuple[EmbeddingProvider, str | None]:
    """The provider ``model`` names, and the collection's name when it names one."""
    collection = svc.store.find_collection(model) if _could_be_collection(model) else None
    if collection is not None:
        return svc.embedders.for_collection(collection), collection.name
    try:
        return svc.embedders.for_new_collection(model), None
    except InvalidInputError as exc:
        raise exc.at("model") from None


def _could_be_collection(model: str) -> bool:
    return re.fullmatch(NAME_PATTERN, model) is not None


def _check_sizes(provider: EmbeddingProvider, counts: list[int], dimensions: int | None) -> None:
    limit = provider.limits.max_tokens_per_input
    too_long = [i for i, n in enumerate(counts) if n > limit]
    if too_long:
        raise InvalidInputError(
            f"input {too_long[0]} has {counts[too_long[0]]:,} tokens, over the {limit:,} that {provider.model} takes; "
            "split it (searchsvc's ingestion chunks long texts for you)"
        ).at("input")
    if dimensions is not None and provider.dimension is not None and dimensions != provider.dimension:
        raise InvalidInputError(
            f"{provider.model} returns {provider.dimension} dimensions; it cannot shorten them to {dimensions}: "
            "leave dimensions out"
        ).at("dimensions")


def _embed(provider: EmbeddingProvider, texts: list[str]) -> np.ndarray:
    step = max(1, provider.limits.max_inputs_per_request)
    try:
        parts = [provider.embed_documents(texts[i : i + step]) for i in range(0, len(texts), step)]
    except ProviderError as exc:
        if exc.status in REFUSED_MODEL_STATUSES:
            raise InvalidInputError(f"the embeddings API refused model {provider.model!r}: {exc}").at("model") from exc
        raise
    return np.vstack(parts)


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return [float(x) for x in vector]
