"""``POST /v1/responses``: OpenAI's Responses API with the ``file_search`` tool over one vector store."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from searchsvc.answering import Answerer, AskRequest
from searchsvc.answering.answerer import opening_events
from searchsvc.answering.conversation import ConversationMemory
from searchsvc.api.auth import READ
from searchsvc.api.chat_completions import read_conversation
from searchsvc.api.chat_models import ChatMessageIn
from searchsvc.api.deps import SvcDep
from searchsvc.api.openai_responses import RESULTS, ResponseWriter
from searchsvc.api.responses import ERRORS
from searchsvc.errors import InvalidInputError, NotFoundError
from searchsvc.vector_stores.searching import translate_filter

router = APIRouter(prefix="/v1", tags=["responses"], responses=ERRORS)
NOT_YET = {"previous_response_id": "responses are not stored: send conversation (a conv_ id), or the turns in input"}
EVENTS_SCHEMA = {"type": "object", "required": ["event", "data"],
                 "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}  # fmt: skip


class ResponseOut(BaseModel):
    """OpenAI's ``response`` object (the fields searchsvc fills; the SDK's type has them all)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]] = Field(description="A file_search_call item, then the message item.")
    usage: dict[str, Any] | None


class ResponsesBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=256)
    input: str | list[dict[str, Any]] = Field(description="The question, or message items (the last one answered).")
    instructions: str | None = Field(None, max_length=16_384)
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=16)
    include: list[str] = Field(default_factory=list, max_length=16)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, ge=1)
    metadata: dict[str, str] | None = None
    conversation: str | dict[str, str] | None = Field(None, description="A conversation's id: its turns come "
                                                      "first, and this turn is added to it.")  # fmt: skip

    def conversation_id(self) -> str | None:
        value = self.conversation.get("id") if isinstance(self.conversation, dict) else self.conversation
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            raise InvalidInputError("conversation must be a conversation id (conv_...)").at("conversation")
        return value


@router.post(
    "/responses",
    dependencies=READ,
    summary="A response written from a vector store (the file_search tool)",
    description="OpenAI's Responses API with one `file_search` tool naming one vector store: output is a "
    "`file_search_call` item and a `message` whose `output_text` carries `file_citation` annotations. "
    "`stream: true` sends the `response.*` events.",
    response_model=None,
    responses={200: {"model": ResponseOut, "content": {"text/event-stream": {"schema": EVENTS_SCHEMA}}}},
)
async def create_response(body: ResponsesBody, svc: SvcDep) -> Any:
    request = _ask_request(body, svc.chat is not None)
    if request.conversation_id is not None:
        earlier = await run_in_threadpool(_thread, svc, request.conversation_id)
        request = replace(request, history=(*earlier, *(request.history or ())))
    try:
        answerer = await run_in_threadpool(lambda: Answerer(svc.store, svc.embedder_for(request.collection), svc.chat,
                                                            svc.settings))  # fmt: skip
    except NotFoundError as exc:
        raise InvalidInputError(f"no vector store {request.collection!r}: {exc}").at(
            "tools[0].vector_store_ids"
        ) from exc
    sent = body.model_dump(exclude_unset=True)
    writer = ResponseWriter(
        body.model, sent, RESULTS in body.include, searching=True, conversation=request.conversation_id
    )
    if not body.stream:
        return JSONResponse(writer.complete(await run_in_threadpool(answerer.answer, request)))
    events = answerer.stream(request)
    opening = await run_in_threadpool(opening_events, events)  # failures before the first words: plain HTTP errors
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(writer.stream(itertools.chain(opening, events)), media_type="text/event-stream",
                             headers=headers)  # fmt: skip


def _refuse_what_is_not_offered(body: ResponsesBody) -> None:
    extra = body.model_extra or {}
    for name, reason in NOT_YET.items():
        if name in extra:
            raise InvalidInputError(f"{name}: {reason}").at(name)
    text_format = (extra.get("text") or {}).get("format") if isinstance(extra.get("text"), dict) else None
    if isinstance(text_format, dict) and text_format.get("type", "text") != "text":
        raise InvalidInputError("text.format: answers are prose with [n] citations; only type 'text' is possible").at(
            "text.format"
        )
    if extra.get("background"):
        raise InvalidInputError(
            "background: responses are written while you wait (stream: true shows them as they come)"
        ).at("background")
    choice = extra.get("tool_choice")
    if choice not in (None, "auto", "required") and not (
        isinstance(choice, dict) and choice.get("type") == "file_search"
    ):
        raise InvalidInputError("tool_choice: the file_search tool always runs; send auto, or leave it out").at(
            "tool_choice"
        )


def _ask_request(body: ResponsesBody, generative: bool) -> AskRequest:
    _refuse_what_is_not_offered(body)
    tool = _file_search(body.tools)
    conversation = read_conversation(_messages(body.input))
    instructions = "\n\n".join(part for part in (body.instructions, conversation.instructions) if part) or None
    params = {"temperature": body.temperature, "top_p": body.top_p, "max_tokens": body.max_output_tokens}
    return AskRequest(
        question=conversation.question,
        collection=tool["vector_store_ids"][0],
        k=_max_results(tool),
        filter=translate_filter(tool["filters"]) if tool.get("filters") else None,
        params={k: v for k, v in params.items() if v is not None},
        model=body.model if generative else None,
        history=conversation.history,
        instructions=instructions,
        conversation_id=body.conversation_id(),
    )


def _thread(svc: Any, conversation_id: str) -> list[dict[str, str]]:
    """The conversation's last turns (a 404 when there is no such conversation)."""
    memory = ConversationMemory(svc.store)
    memory.transcript(conversation_id)
    return memory.history(conversation_id)


def _file_search(tools: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = [t.get("type") for t in tools]
    if any(kind != "file_search" for kind in kinds):
        other = next(kind for kind in kinds if kind != "file_search")
        raise InvalidInputError(f"tools of type {other!r} are not offered on /v1/responses yet; file_search is").at(
            "tools"
        )
    if len(tools) != 1:
        raise InvalidInputError("send one file_search tool: searchsvc writes responses from a vector store").at("tools")
    stores = tools[0].get("vector_store_ids")
    if not isinstance(stores, list) or len(stores) != 1 or not isinstance(stores[0], str):
        raise InvalidInputError("file_search takes one vector store id here (vector_store_ids: [id])").at(
            "tools[0].vector_store_ids"
        )
    return tools[0]


def _max_results(tool: dict[str, Any]) -> int:
    value = tool.get("max_num_results", 8)
    if not isinstance(value, int) or not 1 <= value <= 50:
        raise InvalidInputError("max_num_results must be 1 to 50").at("tools[0].max_num_results")
    return value


def _messages(given: str | list[dict[str, Any]]) -> list[ChatMessageIn]:
    """Input items as chat messages: message items (``input_text``/``output_text`` parts, or a string)."""
    if isinstance(given, str):
        return [ChatMessageIn(role="user", content=given)]
    if not given:
        raise InvalidInputError("input holds no message").at("input")
    messages = []
    for index, item in enumerate(given):
        if item.get("type") == "file_search_call":
            continue  # an earlier response's output passed back as input: its message items carry the turn
        if item.get("type", "message") != "message" or item.get("role") not in (
            "user",
            "assistant",
            "system",
            "developer",
        ):
            raise InvalidInputError(
                f"input[{index}] is not a message item (role user, assistant, system or developer)"
            ).at(f"input[{index}]")
        content = item.get("content")
        if isinstance(content, list):
            content = [{"type": "text", "text": p.get("text")} if p.get("type") in ("input_text", "output_text") else p
                       for p in content]  # fmt: skip
        messages.append(ChatMessageIn(role=item["role"], content=content))
    return messages
