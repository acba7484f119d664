"""What answering takes and gives: the request, numbered sources, citations, the answer and its events."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from searchsvc.providers.tool_calls import ToolCall
from searchsvc.search import SearchHit

EventName = Literal["sources", "delta", "done", "error", "tool_call", "tool_result"]


@dataclass(frozen=True)
class AskRequest:
    """A question over one collection. Never changed by answering (the cleaned question is separate)."""

    question: str
    collection: str
    k: int = 8
    filter: dict[str, Any] | None = None
    min_score: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    models: list[str] | None = None
    conversation_id: str | None = None
    model: str | None = None
    mode: str = "hybrid"
    history: tuple[dict[str, str], ...] | None = None  # the thread, when the caller sends it (chat completions)
    instructions: str | None = None  # the caller's system messages, shown to the chat model after ours
    agentic: bool = False  # the model searches and reads through tools, in rounds (answering/agent.py)
    max_steps: int | None = None  # agentic rounds of tool calls; default from settings
    # The caller's function tools go in ``params`` (``tools``, ``tool_choice``); ``tool_turns`` are the calls
    # the model made and their outputs, in OpenAI's chat format, shown after the question.
    tool_turns: tuple[dict[str, Any], ...] = ()
    also: tuple[str, ...] = ()  # more collections retrieved from (their hits merged by cosine)
    score_threshold: float = 0.0  # a floor on the 0..1 score of vector store search (the Responses API's)


@dataclass(frozen=True)
class AnswerSource:
    """A retrieved chunk shown to the answer model under a number; the hit itself, not a copy of it."""

    number: int
    hit: SearchHit

    @property
    def text(self) -> str:
        return self.hit.text

    @property
    def title(self) -> str | None:
        return self.hit.title

    @property
    def heading_path(self) -> list[str]:
        return self.hit.heading_path

    def location(self) -> str:
        return self.hit.location(separator=", ")

    def as_dict(self) -> dict[str, Any]:
        hit = asdict(self.hit)
        for name in ("metadata", "keyword_score"):
            hit.pop(name)
        return {"number": self.number, **hit}


@dataclass(frozen=True)
class Citation:
    """A source an answer cites, with the sentence of the source that supports the claim."""

    source: AnswerSource
    quote: str

    def as_dict(self) -> dict[str, Any]:
        hit = self.source.hit
        return {
            "number": self.source.number,
            "chunk_id": hit.chunk_id,
            "document_id": hit.document_id,
            "document_key": hit.document_key,
            "title": hit.title,
            "path": hit.path,
            "heading_path": hit.heading_path,
            "line_start": hit.line_start,
            "line_end": hit.line_end,
            "page": hit.page,
            "start_char": hit.start_char,
            "end_char": hit.end_char,
            "location": self.source.location(),
            "quote": self.quote,
        }


@dataclass
class ModelReply:
    """One model's answer text and what it cost, before citations are resolved."""

    text: str
    cited: list[int]
    invalid_citations: int = 0
    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    answered: bool = True
    finish_reason: str | None = None  # the chat model's: "stop", or "length" when max_tokens cut it
    tool_calls: list[ToolCall] = field(default_factory=list)  # the caller's functions the model called
    logprobs: list[dict[str, Any]] | None = None  # the model's tokens' log probabilities, when asked for
    model_substituted: dict[str, str] | None = None  # {"requested", "answered"}: the server answered with another


@dataclass
class Answer:
    """A complete answer. ``answers`` is set instead of ``text`` when several models were compared."""

    question: str
    standalone_query: str
    mode: str  # "generative" or "extractive"
    answered: bool
    sources: list[AnswerSource]
    text: str | None = None
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: int = 0
    conversation_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    latency_ms: float | None = None
    answers: list[dict[str, Any]] | None = None
    rewrite_usage: dict[str, Any] = field(default_factory=dict)  # tokens spent rewriting a follow-up
    finish_reason: str | None = None
    agent: dict[str, Any] | None = None  # agentic answers: {"steps", "stopped_by"}
    tool_calls: list[ToolCall] = field(default_factory=list)  # the caller's functions the model called
    logprobs: list[dict[str, Any]] | None = None  # the model's tokens' log probabilities, when asked for
    # {"requested", "answered"} when the chat server answered with another model than asked (``model`` is the
    # one that answered, as the server named it)
    model_substituted: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON of /v1/ask and ``searchsvc ask --json``."""
        body: dict[str, Any] = {
            "question": self.question,
            "standalone_query": self.standalone_query,
            "mode": self.mode,
            "answered": self.answered,
            "sources": [s.as_dict() for s in self.sources],
        }
        if self.answers is not None:
            return body | {"answers": self.answers}
        body |= {
            "answer": self.text,
            "citations": [c.as_dict() for c in self.citations],
            "invalid_citations": self.invalid_citations,
            "conversation_id": self.conversation_id,
        }
        if self.mode == "generative" and (self.answered or self.agent is not None):
            body |= {"model": self.model, "usage": self.usage or {}, "latency_ms": self.latency_ms}
            if self.model_substituted is not None:
                body["model_substituted"] = self.model_substituted
        if self.agent is not None:
            body["agent"] = self.agent
        if self.logprobs is not None:
            body["logprobs"] = self.logprobs
        return body


@dataclass(frozen=True)
class AnswerEvent:
    """One server-sent event of a streamed answer: ``sources``, ``delta`` pieces, then ``done`` or ``error``.

    Every event carries the answer as it stands; ``done``'s is complete."""

    name: EventName
    answer: Answer
    text: str = ""
    error: dict[str, str] | None = None
    tool: dict[str, Any] | None = None  # tool_call: {id, name, arguments}; tool_result: {id, name, error, sources}

    def data(self) -> dict[str, Any]:
        """The event's JSON payload on the wire."""
        answer = self.answer
        if self.tool is not None:
            return self.tool
        if self.name == "sources":
            return {"sources": [s.as_dict() for s in answer.sources], "standalone_query": answer.standalone_query}
        if self.name == "delta":
            return {"text": self.text}
        if self.name == "error":
            return {"error": self.error, "answered": False}
        done = {
            "citations": [c.as_dict() for c in answer.citations],
            "invalid_citations": answer.invalid_citations,
            "usage": answer.usage or {},
            "mode": answer.mode,
            "answered": answer.answered,
            "conversation_id": answer.conversation_id,
        }
        if answer.logprobs is not None:
            done["logprobs"] = answer.logprobs
        if answer.mode == "generative" and answer.model is not None:
            done["model"] = answer.model
        if answer.model_substituted is not None:
            done["model_substituted"] = answer.model_substituted
        return done if answer.agent is None else {**done, "agent": answer.agent, "answer": answer.text}
