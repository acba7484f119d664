"""How one ``POST /v1/responses`` request is answered: the request checked, its thread put together (an
earlier response's items with ``previous_response_id``, a conversation's turns with ``conversation``, then the
input), and the events that answer it: retrieval and a cited answer with a ``file_search`` tool (from each of
its vector stores), a plain reply from the chat model without one. The caller's ``function`` tools go to
the chat model either way; the calls it makes come back as ``function_call`` items."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from searchsvc.answering import Answerer, AskRequest
from searchsvc.answering.conversation import ConversationMemory
from searchsvc.answering.plain import plain_events
from searchsvc.answering.types import AnswerEvent
from searchsvc.api.deps import Services
from searchsvc.api.extra_body import EXTRA_BODY_DESCRIPTION, MAX_EXTRA_BODY_KEYS, check_extra_body
from searchsvc.api.openai_responses import LOGPROBS
from searchsvc.api.responses_input import as_items, function_tools, read_input, tool_choice
from searchsvc.errors import InvalidInputError, NotFoundError
from searchsvc.storage import responses as stored
from searchsvc.vector_stores.searching import translate_filter

MAX_VECTOR_STORES = 10
TOOL_KINDS = ("file_search", "function")
NO_CHAT = "set AIMLAPI_API_KEY (or SEARCHSVC_BASE_URL and its key) for a chat model"
ID = r"[A-Za-z0-9_-]{1,64}"
# A chat request key → the Responses field that sets it (extra_body may not hold these).
RESPONSES_OWN_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "logprobs": 'include: ["message.output_text.logprobs"]',
    "top_logprobs": "top_logprobs",
}


class ResponsesBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=256)
    input: str | list[dict[str, Any]] = Field(
        description="The question, or input items (the last user message is answered; function_call_output "
        "items after it are used)."
    )
    instructions: str | None = Field(None, max_length=16_384)
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    include: list[str] = Field(default_factory=list, max_length=16)
    stream: bool = False
    store: bool = Field(True, description="Keep the response, for previous_response_id and GET /v1/responses/{id}.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, ge=1)
    top_logprobs: int | None = Field(None, ge=0, le=20, description="Alternatives per token, with include "
                                     "message.output_text.logprobs.")  # fmt: skip
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = Field(None, pattern=ID, description="A stored response this one follows.")
    conversation: str | dict[str, str] | None = Field(None, description="A conversation's id: its turns come "
                                                      "first, and this turn is added to it.")  # fmt: skip
    extra_body: dict[str, Any] | None = Field(
        None,
        max_length=MAX_EXTRA_BODY_KEYS,
        description=f"searchsvc's extension. {EXTRA_BODY_DESCRIPTION} Top-level keys the Responses API does not "
        'know are not passed on: with the OpenAI SDK, send `extra_body={"extra_body": {...}}`.',
    )

    @field_validator("extra_body", mode="before")
    @classmethod
    def _extra_body_fits(cls, value: Any) -> Any:
        return check_extra_body(value, RESPONSES_OWN_FIELDS)

    def conversation_id(self) -> str | None:
        value = self.conversation.get("id") if isinstance(self.conversation, dict) else self.conversation
        if value is not None and not re.fullmatch(ID, value):
            raise InvalidInputError("conversation must be a conversation id (conv_...)").at("conversation")
        return value


@dataclass
class Plan:
    """What answers the request: ``events(live)``, whether it searches, and the input items to keep."""

    events: Callable[[bool], Iterator[AnswerEvent]]
    searching: bool
    conversation_id: str | None
    input_items: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # what goes to the chat model


def plan_response(body: ResponsesBody, svc: Services) -> Plan:
    """The request checked and its thread read (may touch SQL: run it off the event loop)."""
    refuse_what_is_not_offered(body)
    conversation_id = body.conversation_id()
    if conversation_id is not None and body.previous_response_id is not None:
        raise InvalidInputError("send conversation or previous_response_id, not both").at("previous_response_id")
    searches = [i for i, tool in enumerate(body.tools) if tool.get("type") == "file_search"]
    functions = function_tools(body.tools)
    if (functions or not searches) and svc.chat is None:
        reason = "function tools need" if functions else "a response without a file_search tool needs"
        raise InvalidInputError(f"{reason} a chat model: {NO_CHAT}").at("tools")
    items = as_items(body.input)
    parsed = read_input(_earlier(svc, body.previous_response_id, conversation_id), items)
    params = {"temperature": body.temperature, "top_p": body.top_p, "max_tokens": body.max_output_tokens}
    params = {k: v for k, v in params.items() if v is not None}
    if LOGPROBS in body.include:
        params |= {"logprobs": True, **({"top_logprobs": body.top_logprobs} if body.top_logprobs is not None else {})}
    params |= body.extra_body or {}
    if functions:
        params |= {"tools": functions, "tool_choice": tool_choice(body.tool_choice, functions)}
        if body.parallel_tool_calls is not None:
            params["parallel_tool_calls"] = body.parallel_tool_calls
    if not searches:
        return Plan(_plain(svc, body, parsed, params, conversation_id), False, conversation_id, items, params)
    if len(searches) > 1:
        raise InvalidInputError("send one file_search tool (name every vector store in its vector_store_ids)").at(
            f"tools[{searches[1]}]"
        )
    place = f"tools[{searches[0]}]"
    tool = body.tools[searches[0]]
    conversation = parsed.conversation
    instructions = "\n\n".join(part for part in (body.instructions, conversation.instructions) if part) or None
    stores = _vector_stores(tool, place)
    request = AskRequest(
        question=conversation.question, collection=stores[0], also=tuple(stores[1:]), k=_max_results(tool, place),
        filter=translate_filter(tool["filters"]) if tool.get("filters") else None, params=params,
        model=body.model if svc.chat is not None else None, history=conversation.history, instructions=instructions,
        conversation_id=conversation_id, tool_turns=parsed.tool_turns, score_threshold=_threshold(tool, place),
    )  # fmt: skip
    answerer = _answerer(svc, stores, place)
    return Plan(lambda live: answerer.events(request, live), True, conversation_id, items, params)


def refuse_what_is_not_offered(body: ResponsesBody) -> None:
    extra = body.model_extra or {}
    text_format = (extra.get("text") or {}).get("format") if isinstance(extra.get("text"), dict) else None
    if isinstance(text_format, dict) and text_format.get("type", "text") != "text":
        raise InvalidInputError("text.format: answers are prose with [n] citations; only type 'text' is possible").at(
            "text.format"
        )
    if extra.get("background"):
        raise InvalidInputError(
            "background: responses are written while you wait (stream: true shows them as they come)"
        ).at("background")
    for index, tool in enumerate(body.tools):
        if tool.get("type") not in TOOL_KINDS:
            raise InvalidInputError(
                f"tools of type {tool.get('type')!r} are not offered on /v1/responses; file_search and function are"
            ).at(f"tools[{index}].type")


def _earlier(svc: Services, previous: str | None, conversation_id: str | None) -> list[dict[str, Any]]:
    """The items before this input: the stored responses it follows, or the conversation's last turns."""
    with svc.store.session() as session:
        if previous is not None:
            return stored.thread(session, previous)
    if conversation_id is None:
        return []
    memory = ConversationMemory(svc.store)
    memory.transcript(conversation_id)  # a 404 when there is no such conversation
    return as_items(memory.history(conversation_id))


def _plain(svc: Services, body: ResponsesBody, parsed: Any, params: dict[str, Any],
           conversation_id: str | None) -> Callable[[bool], Iterator[AnswerEvent]]:  # fmt: skip
    instructions = [{"role": "system", "content": body.instructions}] if body.instructions else []
    messages = [*instructions, *parsed.thread, *parsed.tool_turns]
    remember = (ConversationMemory(svc.store), conversation_id) if conversation_id is not None else None
    chat, question = svc.chat, parsed.conversation.question
    assert chat is not None
    return lambda live: plain_events(chat, messages, question, body.model, params, live, remember)


def _vector_stores(tool: dict[str, Any], place: str) -> list[str]:
    stores = tool.get("vector_store_ids")
    if not isinstance(stores, list) or not stores or not all(isinstance(s, str) for s in stores):
        raise InvalidInputError("file_search needs vector_store_ids: a list of vector store ids").at(
            f"{place}.vector_store_ids"
        )
    if len(stores) > MAX_VECTOR_STORES or len(set(stores)) != len(stores):
        raise InvalidInputError(f"file_search takes up to {MAX_VECTOR_STORES} different vector stores").at(
            f"{place}.vector_store_ids"
        )
    return stores


def _answerer(svc: Services, stores: list[str], place: str) -> Answerer:
    embedders = {}
    for store in stores:
        try:
            embedders[store] = svc.embedder_for(store)
        except NotFoundError as exc:
            raise InvalidInputError(f"no vector store {store!r}: {exc}").at(f"{place}.vector_store_ids") from exc
    return Answerer(svc.store, embedders[stores[0]], svc.chat, svc.settings, embedders)


def _max_results(tool: dict[str, Any], place: str) -> int:
    value = tool.get("max_num_results", 8)
    if not isinstance(value, int) or not 1 <= value <= 50:
        raise InvalidInputError("max_num_results must be 1 to 50").at(f"{place}.max_num_results")
    return value


def _threshold(tool: dict[str, Any], place: str) -> float:
    """``ranking_options.score_threshold``: a floor on the 0..1 score of vector store search (``ranker`` is
    searchsvc's hybrid ranking whatever it names)."""
    options = tool.get("ranking_options") or {}
    value = options.get("score_threshold", 0.0) if isinstance(options, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInputError("ranking_options.score_threshold must be a number from 0 to 1").at(
            f"{place}.ranking_options.score_threshold"
        )
    return float(value)
