"""OpenAI's Responses API: ``POST /v1/responses`` (a ``file_search`` tool over vector stores, the caller's
``function`` tools, ``conversation`` or ``previous_response_id``), and the stored responses:
``GET``/``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from searchsvc.answering.answerer import opening_events
from searchsvc.answering.types import Answer, AnswerEvent
from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import Services, SvcDep
from searchsvc.api.openai_responses import RESULTS, ResponseWriter
from searchsvc.api.responses import ERRORS
from searchsvc.api.responses_plan import ID, ResponsesBody, plan_response
from searchsvc.storage import responses as stored

router = APIRouter(prefix="/v1", tags=["responses"], responses=ERRORS)
EVENTS_SCHEMA = {"type": "object", "required": ["event", "data"],
                 "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}  # fmt: skip
ResponseId = Path(pattern=ID, description="A response's id (resp_...).")


class ResponseOut(BaseModel):
    """OpenAI's ``response`` object (the fields searchsvc fills; the SDK's type has them all)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]] = Field(
        description="A file_search_call item (with a file_search tool), the message item, and a function_call "
        "item per call of your functions."
    )
    usage: dict[str, Any] | None
    previous_response_id: str | None = None


class ResponseDeletedOut(BaseModel):
    id: str
    object: Literal["response"]
    deleted: bool


class InputItemsOut(BaseModel):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


@router.post(
    "/responses",
    dependencies=READ,
    summary="A response: from your vector stores (file_search), calling your functions, or plain",
    description="OpenAI's Responses API. With a `file_search` tool the stores are searched and the answer cites "
    "them: a `file_search_call` item, then a `message` whose `output_text` carries `file_citation` annotations. "
    "`function` tools are offered to the chat model; its calls come back as `function_call` items, and their "
    "outputs go in the next request's input (with `previous_response_id`, or after the question). "
    "`stream: true` sends the `response.*` events.",
    response_model=None,
    responses={200: {"model": ResponseOut, "content": {"text/event-stream": {"schema": EVENTS_SCHEMA}}}},
)
async def create_response(body: ResponsesBody, svc: SvcDep) -> Any:
    plan = await run_in_threadpool(plan_response, body, svc)
    keep = (lambda finished: _keep(svc, finished, plan.input_items)) if body.store else None
    sent = body.model_dump(exclude_unset=True)
    writer = ResponseWriter(body.model, sent, RESULTS in body.include, plan.searching, plan.conversation_id, keep)
    if not body.stream:
        answer = await run_in_threadpool(_finished, plan.events(False))
        return JSONResponse(await run_in_threadpool(writer.complete, answer))
    events = plan.events(True)
    # Failures before the first words are plain HTTP errors; with functions offered, before the model is called.
    opening = await run_in_threadpool(opening_events, events, "tools" in plan.params)
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(writer.stream(itertools.chain(opening, events)), media_type="text/event-stream",
                             headers=headers)  # fmt: skip


@router.get("/responses/{response_id}", dependencies=READ, response_model=ResponseOut,
            summary="A stored response")  # fmt: skip
async def get_response(svc: SvcDep, response_id: str = ResponseId) -> Any:
    return JSONResponse(await run_in_threadpool(_body, svc, response_id))


@router.delete("/responses/{response_id}", dependencies=WRITE, response_model=ResponseDeletedOut,
               summary="Delete a stored response (no later response can follow it)")  # fmt: skip
async def delete_response(svc: SvcDep, response_id: str = ResponseId) -> ResponseDeletedOut:
    await run_in_threadpool(_remove, svc, response_id)
    return ResponseDeletedOut(id=response_id, object="response", deleted=True)


@router.get("/responses/{response_id}/input_items", dependencies=READ, response_model=InputItemsOut,
            summary="The input items a stored response answered")  # fmt: skip
async def list_input_items(
    svc: SvcDep,
    response_id: str = ResponseId,
    limit: int = Query(20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = Query(None, max_length=64),
) -> InputItemsOut:
    items = (await run_in_threadpool(_input_items, svc, response_id))[:: -1 if order == "desc" else 1]
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
    return InputItemsOut(object="list", data=page, first_id=first, last_id=last, has_more=len(items) > limit)


def _finished(events: Iterator[AnswerEvent]) -> Answer:
    done = [event for event in events if event.name == "done"]
    assert done and done[0].answer is not None
    return done[0].answer


def _keep(svc: Services, finished: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
    with svc.store.session() as session:
        stored.save(session, finished, input_items)


def _body(svc: Services, response_id: str) -> dict[str, Any]:
    with svc.store.session() as session:
        return stored.get(session, response_id).body


def _remove(svc: Services, response_id: str) -> None:
    with svc.store.session() as session:
        stored.remove(session, response_id)


def _input_items(svc: Services, response_id: str) -> list[dict[str, Any]]:
    with svc.store.session() as session:
        return list(stored.get(session, response_id).input_items)
