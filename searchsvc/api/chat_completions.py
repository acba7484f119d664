"""Answers as OpenAI chat completions: a ``rag:<collection>`` model's request read into a question, its
thread and the caller's instructions; an ``Answer`` (or its events) written back as ``chat.completion``
(or ``chat.completion.chunk`` server-sent events ending in ``data: [DONE]``).

Citations: the text keeps searchsvc's ``[n]`` markers; each marker gets a ``file_citation`` annotation
(file id and name, the supporting quote, where the marker sits). The sources and citations in full are in
the ``searchsvc`` extension field: on the completion, and on a stream's first and last chunks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from searchsvc.answering import Answer, AnswerEvent
from searchsvc.answering.conversation import HISTORY_MESSAGES
from searchsvc.answering.types import Citation
from searchsvc.api.chat_models import ChatCompletionBody, ChatMessageIn
from searchsvc.api.extra_body import check_size
from searchsvc.citations import MARKER
from searchsvc.errors import InvalidInputError
from searchsvc.vector_stores.searching import file_of

RAG_PREFIX = "rag:"
MAX_MESSAGE_CHARS = 65_536  # any one message of a rag: request
MAX_INSTRUCTION_CHARS = 16_384  # the system and developer messages together
HISTORY_CHARS = 4_000  # what of each earlier turn the rewriting model sees (its end)
# Fields of a chat request that are about the exchange, not the generation: never forwarded as parameters.
EXCHANGE_FIELDS = {"model", "messages", "stream", "stream_options", "searchsvc", "user", "metadata", "store"}
# What a rag: model cannot honour, and why (it answers in prose with citations, one answer per request).
REFUSED_ON_RAG = {
    "tools": "function calling is not offered on rag: models yet; call the provider's model for tools",
    "tool_choice": "function calling is not offered on rag: models yet",
    "functions": "function calling is not offered on rag: models yet",
    "function_call": "function calling is not offered on rag: models yet",
    "audio": "rag: models answer in text",
    "modalities": "rag: models answer in text",
    "prediction": "predicted outputs do not apply to an answer written from retrieved sources",
    "web_search_options": "rag: models search your documents, not the web",
    "extra_body": "send its keys at the top level of the request instead: a rag: model passes parameters it does "
    "not know on to its chat model unchanged (the OpenAI SDK's extra_body= puts them there)",
}


def rag_collection(model: str) -> str | None:
    """The collection a ``rag:<collection>`` model answers from (None for any other model)."""
    return model[len(RAG_PREFIX) :] if model.startswith(RAG_PREFIX) else None


@dataclass(frozen=True)
class Conversation:
    question: str
    history: tuple[dict[str, str], ...]
    instructions: str | None


def message_text(message: ChatMessageIn, index: int) -> str | None:
    """A message's text (content parts joined); a part that is not text is refused."""
    content = message.content
    if content is None or isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise InvalidInputError(
                f"messages[{index}] has a {part.get('type')!r} content part: rag: models read text parts only"
            ).at(f"messages[{index}].content")
        if not isinstance(part.get("text"), str):
            raise InvalidInputError(f"a text part of messages[{index}] has no text").at(f"messages[{index}].content")
        texts.append(part["text"])
    return "\n".join(texts)


def _checked_text(message: ChatMessageIn, index: int) -> str | None:
    if message.role in ("tool", "function"):
        raise InvalidInputError(
            f"messages[{index}] is a {message.role} message: rag: models take system, developer, user and "
            "assistant messages (tool calls are not offered on them yet)"
        ).at(f"messages[{index}].role")
    text = message_text(message, index)
    if text is not None and len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(
            f"messages[{index}] has {len(text):,} characters; rag: models take messages of up to {MAX_MESSAGE_CHARS:,}"
        ).at(f"messages[{index}].content")
    return text


def read_conversation(messages: list[ChatMessageIn]) -> Conversation:
    """The last user message is the question; earlier user and assistant turns are its thread (the last
    few, for rewriting a follow-up); system and developer messages are the caller's instructions."""
    last = len(messages) - 1
    question = _checked_text(messages[last], last)
    if messages[last].role != "user" or not question or not question.strip():
        raise InvalidInputError("a rag: model answers the last message, which must be a user message with text").at(
            f"messages[{last}]"
        )
    history: list[dict[str, str]] = []
    instructions: list[str] = []
    for index, message in enumerate(messages[:last]):
        text = _checked_text(message, index)
        if not text:
            continue
        if message.role in ("system", "developer"):
            instructions.append(text)
        else:
            history.append({"role": message.role, "content": text[-HISTORY_CHARS:]})
    joined = "\n\n".join(instructions)
    if len(joined) > MAX_INSTRUCTION_CHARS:
        raise InvalidInputError(
            f"the system and developer messages hold {len(joined):,} characters; a rag: model takes up to "
            f"{MAX_INSTRUCTION_CHARS:,} of instructions (the sources fill the rest of its context)"
        ).at("messages")
    return Conversation(question, tuple(history[-HISTORY_MESSAGES:]), joined or None)


def generation_params(body: ChatCompletionBody) -> dict[str, Any]:
    """What a rag: model passes on to its chat model: every generation parameter sent, refused ones refused."""
    sent = body.model_dump(exclude_unset=True, exclude_none=True)
    if "stream_options" in sent and not body.stream:
        raise InvalidInputError("stream_options is only allowed with stream: true").at("stream_options")
    for name, reason in REFUSED_ON_RAG.items():
        if name in sent:
            raise InvalidInputError(f"{name}: {reason}").at(name)
    if sent.get("top_logprobs") is not None and not sent.get("logprobs"):
        raise InvalidInputError("top_logprobs needs logprobs: true").at("top_logprobs")
    if sent.get("n", 1) != 1:
        raise InvalidInputError("n: a rag: model writes one answer per request; send n=1 or leave it out").at("n")
    response_format = sent.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        raise InvalidInputError(
            "response_format: a rag: model answers in prose with [n] citations; only type 'text' is possible"
        ).at("response_format")
    unknown = {name: sent[name] for name in body.model_extra or {} if name in sent}
    try:  # passed on unchanged, so held to extra_body's limits
        check_size(unknown, "the parameters a rag: model does not know (passed on to its chat model)")
    except ValueError as exc:
        raise InvalidInputError(str(exc)).at(next(iter(unknown), "body")) from None
    return {name: value for name, value in sent.items() if name not in EXCHANGE_FIELDS and name != "n"}


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage(answer: Answer) -> dict[str, int]:
    """Tokens of every chat call the answer took (rewriting the question, then writing the answer)."""
    total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for part in (answer.rewrite_usage, answer.usage or {}):
        for name in total:
            value = part.get(name)
            total[name] += value if isinstance(value, int) else 0
    return total


def annotations(text: str, citations: list[Citation]) -> list[dict[str, Any]]:
    """One ``file_citation`` per source named by each ``[n]`` marker of the text, in the text's order."""
    by_number = {c.source.number: c for c in citations}
    found = []
    for marker in MARKER.finditer(text):
        for number in (int(n) for n in marker.group(1).split(",")):
            citation = by_number.get(number)
            if citation is not None:
                found.append(_annotation(citation, marker.start(), marker.end()))
    return found


def _annotation(citation: Citation, start: int, end: int) -> dict[str, Any]:
    hit = citation.source.hit
    file_id, filename = file_of(hit)
    return {
        "type": "file_citation",
        "file_citation": {
            "file_id": file_id,
            "filename": filename,
            "title": hit.title,
            "quote": citation.quote,
            "source": citation.source.number,
            "start_index": start,
            "end_index": end,
        },
    }


def logprobs(answer: Answer) -> dict[str, Any] | None:
    """The chat model's token log probabilities, when asked for (streamed, they come whole with the last
    chunk: the text streamed is checked for citations on the way, so its pieces are not the model's)."""
    return None if answer.logprobs is None else {"content": answer.logprobs, "refusal": None}


def rag_details(answer: Answer) -> dict[str, Any]:
    details = {
        "mode": answer.mode,
        "answered": answer.answered,
        "standalone_query": answer.standalone_query,
        "sources": [s.as_dict() for s in answer.sources],
        "citations": [c.as_dict() for c in answer.citations],
        "invalid_citations": answer.invalid_citations,
    }
    if answer.model_substituted is not None:
        details["model_substituted"] = answer.model_substituted
    return details


def completion(answer: Answer, model: str) -> dict[str, Any]:
    """A whole answer as a ``chat.completion``."""
    text = answer.text or ""
    message = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": annotations(text, answer.citations),
    }
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.finish_reason or "stop",
                "logprobs": logprobs(answer),
            }
        ],
        "usage": usage(answer),
        "searchsvc": rag_details(answer),
    }


def stream_chunks(events: Iterator[AnswerEvent], model: str, include_usage: bool) -> Iterator[str]:
    """An answer's events as ``chat.completion.chunk`` events: the role and sources first, the text in
    pieces, then the annotations with ``finish_reason``, usage when asked for, and ``[DONE]``. An answer
    cut by its provider ends with an ``error`` event (which the SDKs raise), never ``[DONE]``."""
    base: dict[str, Any] = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time())}
    base |= {"model": model, **({"usage": None} if include_usage else {})}

    def chunk(delta: dict[str, Any], finish: str | None = None, chances: Any = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": chances}
        return _sse({**base, "choices": [choice], **extra})

    for event in events:
        answer = event.answer
        if event.name == "sources":
            details = {"sources": [s.as_dict() for s in answer.sources], "standalone_query": answer.standalone_query}
            yield chunk({"role": "assistant", "content": ""}, searchsvc=details)
        elif event.name == "delta":
            yield chunk({"content": event.text})
        elif event.name == "error":
            error = event.error or {}
            yield _sse({"error": {"message": error.get("message"), "type": "server_error", "code": error.get("code")}})
            return
        else:
            notes = annotations(answer.text or "", answer.citations)
            yield chunk({"annotations": notes}, answer.finish_reason or "stop", logprobs(answer),
                        searchsvc=rag_details(answer))  # fmt: skip
            if include_usage:
                yield _sse({**base, "choices": [], "usage": usage(answer)})
    yield "data: [DONE]\n\n"


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, default=str)}\n\n"
