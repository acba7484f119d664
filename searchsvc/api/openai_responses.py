"""OpenAI's Responses API over searchsvc's answers: the request read into an ``AskRequest`` (the
``file_search`` tool names the vector store, the ``input`` items the question and its thread), an
``Answer`` (or its events) written back as a ``response`` object (or its ``response.*`` event stream).

Output: a ``file_search_call`` item (its query; its results with ``include: ["file_search_call.results"]``),
then a ``message`` item whose ``output_text`` keeps the ``[n]`` markers, each with a ``file_citation``
annotation (``file_id``, ``filename``, ``index``: where the marker starts in the text).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from searchsvc.answering import Answer, AnswerEvent
from searchsvc.api.chat_completions import usage as chat_usage
from searchsvc.citations import MARKER
from searchsvc.errors import SearchsvcError
from searchsvc.providers.tool_calls import ToolCall
from searchsvc.vector_stores.searching import file_of, normalised

RESULTS = "file_search_call.results"
LOGPROBS = "message.output_text.logprobs"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def file_citations(answer: Answer) -> list[dict[str, Any]]:
    by_number = {c.source.number: c for c in answer.citations}
    notes = []
    for marker in MARKER.finditer(answer.text or ""):
        for number in (int(n) for n in marker.group(1).split(",")):
            if number in by_number:
                file_id, filename = file_of(by_number[number].source.hit)
                notes.append(
                    {"type": "file_citation", "file_id": file_id, "filename": filename, "index": marker.start()}
                )
    return notes


def search_call(item_id: str, answer: Answer | None, include_results: bool) -> dict[str, Any]:
    """The ``file_search_call`` item: in progress until the sources are known."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "file_search_call",
        "status": "in_progress",
        "queries": [],
        "results": None,
    }
    if answer is None:
        return item
    item |= {"status": "completed", "queries": [answer.standalone_query]}
    if include_results:
        item["results"] = [
            {"file_id": file_of(s.hit)[0], "filename": file_of(s.hit)[1], "score": normalised(s.hit), "text": s.text,
             "attributes": {k: v for k, v in s.hit.metadata.items() if isinstance(v, str | int | float | bool)}}
            for s in answer.sources
        ]  # fmt: skip
    return item


def message(
    item_id: str, text: str, annotations: list[dict[str, Any]], done: bool, logprobs: list[Any] | None = None
) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": logprobs or []}
    status = "completed" if done else "in_progress"
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": [part] if done else []}


def usage(answer: Answer) -> dict[str, Any]:
    """Every chat call's tokens (chat_completions.usage), in the Responses API's names."""
    summed = chat_usage(answer)
    prompt, completion = summed["prompt_tokens"], summed["completion_tokens"]
    details = {"cached_tokens": 0, "cache_write_tokens": 0}
    return {"input_tokens": prompt, "input_tokens_details": details, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}  # fmt: skip


def function_call(call: ToolCall, item_id: str, done: bool) -> dict[str, Any]:
    """A ``function_call`` item: a call of the caller's function, for the caller to run."""
    arguments = call.arguments if done else ""
    call_id = call.id or item_id.replace("fc_", "call_", 1)  # some servers leave the id out
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": call.name, "arguments": arguments,
            "status": "completed" if done else "in_progress"}  # fmt: skip


class ResponseWriter:
    """One response being written: its fixed fields, its items, and (streamed) the events' numbering.
    ``keep`` is called with the finished response (to store it)."""

    def __init__(self, model: str, request: dict[str, Any], include_results: bool, searching: bool,
                 conversation: str | None, keep: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.id, self.created, self.conversation = new_id("resp"), int(time.time()), conversation
        self.model, self.request, self.include_results, self.searching = model, request, include_results, searching
        self.search_id, self.message_id = new_id("fs"), new_id("msg")
        self.sequence, self.keep, self.message_open = 0, keep, False

    def response(self, status: str, output: list[dict[str, Any]], answer: Answer | None = None) -> dict[str, Any]:
        request = self.request
        body = {
            "id": self.id, "object": "response", "created_at": self.created, "status": status, "model": self.model,
            "output": output, "error": None, "incomplete_details": None, "instructions": request.get("instructions"),
            "metadata": request.get("metadata") or {}, "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "max_output_tokens": request.get("max_output_tokens"), "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [], "text": {"format": {"type": "text"}}, "truncation": "disabled",
            "previous_response_id": request.get("previous_response_id"), "store": request.get("store", True),
            "usage": usage(answer) if answer is not None else None,
            "conversation": {"id": self.conversation} if self.conversation else None,
        }  # fmt: skip
        if answer is not None:
            body["searchsvc"] = {"mode": answer.mode, "answered": answer.answered,
                                 "citations": [c.as_dict() for c in answer.citations]}  # fmt: skip
            if answer.model_substituted is not None:
                body["searchsvc"]["model_substituted"] = answer.model_substituted
        return body

    def output(self, answer: Answer) -> list[dict[str, Any]]:
        items = [search_call(self.search_id, answer, self.include_results)] if self.searching else []
        if answer.text or not answer.tool_calls:
            items.append(message(self.message_id, answer.text or "", file_citations(answer), True, answer.logprobs))
        return items + [function_call(call, self.call_item_id(n), True) for n, call in enumerate(answer.tool_calls)]

    def call_item_id(self, number: int) -> str:
        return f"fc_{self.id.removeprefix('resp_')}_{number}"

    def complete(self, answer: Answer) -> dict[str, Any]:
        finished = self.response("completed", self.output(answer), answer)
        if self.keep is not None:
            self.keep(finished)
        return finished

    def event(self, kind: str, **data: Any) -> str:
        payload = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload, default=str)}\n\n"

    def stream(self, events: Iterator[AnswerEvent]) -> Iterator[str]:
        """The ``response.*`` events of a streamed answer, in the order OpenAI sends them; a failure after the
        first words ends it with ``response.failed``."""
        try:
            yield from self._events(events)
        except SearchsvcError as exc:
            yield self._failed(str(exc))

    def _failed(self, message: str) -> str:
        error = {"code": "server_error", "message": message}
        return self.event("response.failed", response={**self.response("failed", []), "error": error})

    def _events(self, events: Iterator[AnswerEvent]) -> Iterator[str]:
        yield self.event("response.created", response=self.response("in_progress", []))
        yield self.event("response.in_progress", response=self.response("in_progress", []))
        if self.searching:
            yield self.event(
                "response.output_item.added", output_index=0, item=search_call(self.search_id, None, False)
            )
            for phase in ("in_progress", "searching"):
                yield self.event(f"response.file_search_call.{phase}", output_index=0, item_id=self.search_id)
        for event in events:
            if event.name == "sources" and self.searching:
                yield self.event("response.file_search_call.completed", output_index=0, item_id=self.search_id)
                done = search_call(self.search_id, event.answer, self.include_results)
                yield self.event("response.output_item.done", output_index=0, item=done)
            elif event.name == "delta" and event.text:
                yield from self._opened()
                where = {"item_id": self.message_id, "output_index": int(self.searching), "content_index": 0}
                yield self.event("response.output_text.delta", **where, delta=event.text, logprobs=[])
            elif event.name == "error":
                yield self._failed(str((event.error or {}).get("message")))
                return
            elif event.name == "done":
                yield from self._closing(event.answer)

    def _opened(self) -> Iterator[str]:
        """The message item and its text part, when its first words come."""
        if self.message_open:
            return
        self.message_open, index = True, int(self.searching)
        yield self.event("response.output_item.added", output_index=index, item=message(self.message_id, "", [], False))
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield self.event("response.content_part.added", item_id=self.message_id, output_index=index, content_index=0,
                         part=part)  # fmt: skip

    def _closing(self, answer: Answer) -> Iterator[str]:
        index = int(self.searching)
        if answer.text or not answer.tool_calls:
            yield from self._opened()
            yield from self._message_done(answer, index)
            index += 1
        for number, call in enumerate(answer.tool_calls):
            yield from self._call_events(call, self.call_item_id(number), index + number)
        yield self.event("response.completed", response=self.complete(answer))

    def _message_done(self, answer: Answer, index: int) -> Iterator[str]:
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        text, notes = answer.text or "", file_citations(answer)
        for number, note in enumerate(notes):
            yield self.event("response.output_text.annotation.added", **where, annotation_index=number, annotation=note)
        chances = answer.logprobs or []  # whole here: the streamed pieces were checked for citations on the way
        yield self.event("response.output_text.done", **where, text=text, logprobs=chances)
        part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": chances}
        yield self.event("response.content_part.done", **where, part=part)
        done = message(self.message_id, text, notes, True, answer.logprobs)
        yield self.event("response.output_item.done", output_index=index, item=done)

    def _call_events(self, call: ToolCall, item_id: str, index: int) -> Iterator[str]:
        """A function call's item, its arguments (in one piece: they are whole once the model's reply is), done."""
        yield self.event("response.output_item.added", output_index=index, item=function_call(call, item_id, False))
        where = {"item_id": item_id, "output_index": index}
        yield self.event("response.function_call_arguments.delta", **where, delta=call.arguments)
        yield self.event("response.function_call_arguments.done", **where, arguments=call.arguments, name=call.name)
        yield self.event("response.output_item.done", output_index=index, item=function_call(call, item_id, True))
