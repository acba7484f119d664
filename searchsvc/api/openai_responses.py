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
from collections.abc import Iterator
from typing import Any

from searchsvc.answering import Answer, AnswerEvent
from searchsvc.api.chat_completions import usage as chat_usage
from searchsvc.citations import MARKER
from searchsvc.errors import SearchsvcError
from searchsvc.vector_stores.searching import file_of, normalised

RESULTS = "file_search_call.results"


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


def message(item_id: str, text: str, annotations: list[dict[str, Any]], done: bool) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
    status = "completed" if done else "in_progress"
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": [part] if done else []}


def usage(answer: Answer) -> dict[str, Any]:
    """Every chat call's tokens (chat_completions.usage), in the Responses API's names."""
    summed = chat_usage(answer)
    prompt, completion = summed["prompt_tokens"], summed["completion_tokens"]
    details = {"cached_tokens": 0, "cache_write_tokens": 0}
    return {"input_tokens": prompt, "input_tokens_details": details, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}  # fmt: skip


class ResponseWriter:
    """One response being written: its fixed fields, its items, and (streamed) the events' numbering."""

    def __init__(
        self, model: str, request: dict[str, Any], include_results: bool, searching: bool, conversation: str | None
    ) -> None:
        self.id, self.created, self.conversation = new_id("resp"), int(time.time()), conversation
        self.model, self.request, self.include_results, self.searching = model, request, include_results, searching
        self.search_id, self.message_id = new_id("fs"), new_id("msg")
        self.sequence = 0

    def response(self, status: str, output: list[dict[str, Any]], answer: Answer | None = None) -> dict[str, Any]:
        body = {
            "id": self.id, "object": "response", "created_at": self.created, "status": status, "model": self.model,
            "output": output, "error": None, "incomplete_details": None,
            "instructions": self.request.get("instructions"),
            "metadata": self.request.get("metadata") or {}, "parallel_tool_calls": True,
            "temperature": self.request.get("temperature"), "top_p": self.request.get("top_p"),
            "max_output_tokens": self.request.get("max_output_tokens"), "tool_choice": "auto",
            "tools": self.request.get("tools") or [], "text": {"format": {"type": "text"}}, "truncation": "disabled",
            "previous_response_id": None, "store": False, "usage": usage(answer) if answer is not None else None,
            "conversation": {"id": self.conversation} if self.conversation else None,
        }  # fmt: skip
        if answer is not None:
            body["searchsvc"] = {"mode": answer.mode, "answered": answer.answered,
                                 "citations": [c.as_dict() for c in answer.citations]}  # fmt: skip
        return body

    def output(self, answer: Answer) -> list[dict[str, Any]]:
        items = [search_call(self.search_id, answer, self.include_results)] if self.searching else []
        return [*items, message(self.message_id, answer.text or "", file_citations(answer), done=True)]

    def complete(self, answer: Answer) -> dict[str, Any]:
        return self.response("completed", self.output(answer), answer)

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
        index = 0
        if self.searching:
            yield self.event(
                "response.output_item.added", output_index=0, item=search_call(self.search_id, None, False)
            )
            for phase in ("in_progress", "searching"):
                yield self.event(f"response.file_search_call.{phase}", output_index=0, item_id=self.search_id)
            index = 1
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        for event in events:
            answer = event.answer
            if event.name == "sources":
                if self.searching:
                    yield self.event("response.file_search_call.completed", output_index=0, item_id=self.search_id)
                    done = search_call(self.search_id, answer, self.include_results)
                    yield self.event("response.output_item.done", output_index=0, item=done)
                yield self.event(
                    "response.output_item.added", output_index=index, item=message(self.message_id, "", [], False)
                )
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield self.event("response.content_part.added", **where, part=part)
            elif event.name == "delta" and event.text:
                yield self.event("response.output_text.delta", **where, delta=event.text, logprobs=[])
            elif event.name == "error":
                yield self._failed(str((event.error or {}).get("message")))
                return
            elif event.name == "done":
                yield from self._closing(answer, where, index)

    def _closing(self, answer: Answer, where: dict[str, Any], index: int) -> Iterator[str]:
        text, notes = answer.text or "", file_citations(answer)
        for number, note in enumerate(notes):
            yield self.event("response.output_text.annotation.added", **where, annotation_index=number, annotation=note)
        yield self.event("response.output_text.done", **where, text=text, logprobs=[])
        part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
        yield self.event("response.content_part.done", **where, part=part)
        yield self.event(
            "response.output_item.done", output_index=index, item=message(self.message_id, text, notes, True)
        )
        yield self.event("response.completed", response=self.complete(answer))
