"""``POST /v1/chat/completions``: ``rag:<collection>`` models answer from a collection with citations;
any other model is the configured chat API's, passed on as sent."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from searchsvc.answering import Answerer, AskRequest
from searchsvc.answering.answerer import opening_events
from searchsvc.api.auth import READ
from searchsvc.api.chat_completions import (
    completion,
    generation_params,
    rag_collection,
    read_conversation,
    stream_chunks,
)
from searchsvc.api.chat_models import ChatCompletionBody, ChatCompletionOut, RagOptions
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.responses import ERRORS
from searchsvc.errors import InvalidInputError, ModelNotFoundError, NotFoundError, ProviderError, ProviderRefusedError
from searchsvc.providers.chat import ChatProvider

router = APIRouter(prefix="/v1", tags=["chat"], responses=ERRORS)

MAX_QUESTION_CHARS = 16_384
CHUNK_SCHEMA = {  # OpenAPI 3.1: the schema of an event stream is that of one event
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "description": "A `chat.completion.chunk` as JSON; the last event is `[DONE]`."}
    },
}
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@router.post(
    "/chat/completions",
    dependencies=READ,
    summary="Chat completions: answers from a collection (rag:<collection>) or the configured chat API",
    description="OpenAI's shape. `rag:<collection>` models (listed by GET /v1/models) retrieve with the "
    "conversation's last turns, answer with `[n]` citations, `file_citation` annotations and the sources in "
    "the `searchsvc` extension field; without a chat API they answer extractively in the same shape. Other "
    "models go to the configured chat API as sent. `stream: true` sends `chat.completion.chunk` events.",
    response_model=None,
    responses={200: {"model": ChatCompletionOut, "content": {"text/event-stream": {"schema": CHUNK_SCHEMA}}}},
)
async def chat_completions(body: ChatCompletionBody, svc: SvcDep) -> Any:
    collection = rag_collection(body.model)
    if collection is None:
        return await _pass_on(body, svc)
    request = _ask_request(body, collection)
    answerer = await run_in_threadpool(_answerer, svc, request)
    if not body.stream:
        answer = await run_in_threadpool(_refusals_kept, answerer.answer, request)
        return JSONResponse(completion(answer, body.model))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    events = answerer.stream(request)
    opening = await run_in_threadpool(_refusals_kept, opening_events, events)
    return _event_stream(stream_chunks(_closing(itertools.chain(opening, events), events), body.model, include_usage))


def _closing(lines: Iterator[Any], source: Iterator[Any]) -> Iterator[Any]:
    """``lines``, closing ``source`` (and the provider stream under it) when the client goes away."""
    try:
        yield from lines
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _refusals_kept(call: Callable[[Any], Any], argument: Any) -> Any:
    try:
        return call(argument)
    except ProviderError as exc:
        raise _as_refusal(exc) from exc


def _ask_request(body: ChatCompletionBody, collection: str) -> AskRequest:
    conversation = read_conversation(body.messages)
    if len(conversation.question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(
            f"the last message has {len(conversation.question):,} characters; a rag: model answers questions "
            f"of up to {MAX_QUESTION_CHARS:,}"
        ).at(f"messages[{len(body.messages) - 1}].content")
    options = body.searchsvc or RagOptions()
    return AskRequest(
        question=conversation.question,
        collection=collection,
        k=options.k,
        filter=options.filter,
        min_score=options.min_score,
        params=generation_params(body),
        model=options.chat_model,
        mode=options.mode,
        history=conversation.history,
        instructions=conversation.instructions,
    )


def _answerer(svc: Services, request: AskRequest) -> Answerer:
    if request.model is not None and svc.chat is None:
        raise InvalidInputError(
            "searchsvc.chat_model needs a chat API, and none is configured (set AIMLAPI_API_KEY, or "
            "SEARCHSVC_BASE_URL and its key); leave it out to answer extractively"
        ).at("searchsvc.chat_model")
    try:
        embedder = svc.embedder_for(request.collection)
    except (NotFoundError, InvalidInputError) as exc:
        raise ModelNotFoundError(
            f"the model 'rag:{request.collection}' does not exist: {exc}. GET /v1/models lists the rag: models, "
            "one per collection"
        ) from exc
    return Answerer(svc.store, embedder, svc.chat, svc.settings)


async def _pass_on(body: ChatCompletionBody, svc: SvcDep) -> Any:
    """A provider's model: the body goes to the configured chat API as sent; its answer comes back as is."""
    chat = svc.chat
    if chat is None:
        raise ModelNotFoundError(
            f"the model {body.model!r} is not served here: no chat API is configured, so only rag:<collection> "
            "models answer (extractively). Set AIMLAPI_API_KEY (or SEARCHSVC_BASE_URL and its key) for others"
        )
    payload = body.model_dump(exclude_unset=True)
    if not body.stream:
        return JSONResponse(await run_in_threadpool(_refusals_kept, _passed_on(chat), payload))
    events = chat.client.stream_chat(payload)
    first = await run_in_threadpool(_refusals_kept, _first_event, events)
    return _event_stream(_closing(_relay(itertools.chain(first, events)), events))


def _passed_on(chat: ChatProvider) -> Callable[[dict[str, Any]], Any]:
    return lambda payload: chat.client.post_json("/chat/completions", payload)


def _first_event(events: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(itertools.islice(events, 1))


def _as_refusal(exc: ProviderError) -> ProviderError:
    """A provider's 4xx to a request passed on as sent is the caller's to fix: answered with its status."""
    if type(exc) is ProviderError and exc.status is not None and 400 <= exc.status < 500:
        return ProviderRefusedError(str(exc), exc.status)
    return exc


def _relay(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    try:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n"
    except ProviderError as exc:
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': exc.code}})}\n\n"
        return
    yield "data: [DONE]\n\n"


def _event_stream(lines: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream", headers=SSE_HEADERS)
