"""POST /v1/ask (its conversations are under routes/conversations.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from searchsvc.answering import Answerer, AnswerEvent, AskRequest
from searchsvc.api.auth import READ
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.responses import ANSWER_EVENT_SCHEMA, ERRORS, AskOut
from searchsvc.api.schemas import AskBody
from searchsvc.errors import SearchsvcError

router = APIRouter(prefix="/v1", tags=["answers"], responses=ERRORS)


def _answerer(svc: Services, collection: str) -> Answerer:
    return Answerer(svc.store, svc.embedder_for(collection), svc.chat, svc.settings)


@router.post(
    "/ask",
    dependencies=READ,
    summary="Answer a question with numbered citations",
    description="With `stream: true` the answer comes as server-sent events: `sources`, `delta` pieces, then "
    "`done` (citations, usage) or `error` if it was cut. With `agentic: true` the chat model searches and "
    "reads through tools first: `tool_call` and `tool_result` events come before the answer's.",
    response_model=AskOut,
    response_model_exclude_unset=True,
    responses={200: {"content": {"text/event-stream": {"schema": ANSWER_EVENT_SCHEMA}}}},
)
async def ask(body: AskBody, svc: SvcDep) -> Any:
    request = AskRequest(
        question=body.question,
        collection=svc.collection_name(body.collection),
        k=body.k,
        filter=body.filter,
        min_score=body.min_score,
        params=body.generation_params(),
        models=body.models,
        conversation_id=body.conversation_id,
        model=body.model,
        mode=body.mode,
        agentic=body.agentic,
        max_steps=body.max_steps,
    )
    answerer = await run_in_threadpool(_answerer, svc, request.collection)
    if not body.stream:
        return (await run_in_threadpool(answerer.answer, request)).as_dict()
    return StreamingResponse(
        _sse(answerer.stream(request)),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _sse(events: Iterator[AnswerEvent]) -> Iterator[str]:
    """Server-sent events; an error after the stream started is sent as an ``error`` event."""
    try:
        for event in events:
            yield f"event: {event.name}\ndata: {json.dumps(event.data(), default=str)}\n\n"
    except SearchsvcError as exc:
        error = {"error": {"code": exc.code, "message": str(exc)}, "answered": False}
        yield f"event: error\ndata: {json.dumps(error)}\n\n"
