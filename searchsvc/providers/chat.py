"""Chat completions from the AI/ML API or any OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from searchsvc.errors import ProviderError, ProviderResponseError
from searchsvc.providers import anthropic_format as anthropic
from searchsvc.providers.anthropic_format import uses_anthropic
from searchsvc.providers.http_client import OpenAICompatibleClient
from searchsvc.providers.rate_limits import Pacer
from searchsvc.providers.substitution import substitution
from searchsvc.providers.token_counting import TiktokenCounter
from searchsvc.providers.tool_calls import ToolCall, parse_tool_calls
from searchsvc.providers.usage import UsageSink, chat_usage


@dataclass
class ChatResult:
    text: str
    model: str
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None  # with logprobs asked: one entry per token (OpenAI's shape)
    substituted: dict[str, str] | None = None  # {"requested", "answered"} when another model answered


@dataclass
class ChatDelta:
    """One piece of a streamed answer; the last one carries finish_reason and usage when sent. Tool calls
    come as raw pieces (``ToolCallPieces`` puts them together)."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None
    model: str | None = None  # the model the server says answered (on every chunk that names it)
    substituted: dict[str, str] | None = None  # on the first chunk naming another model than asked


class ChatProvider:
    """``POST /chat/completions``; generation parameters are passed through unchanged. Models that speak
    Anthropic's format (``chat_format``: ``anthropic``, or ``auto`` for Claude models) get ``POST /messages``
    instead, translated both ways (``anthropic_format``)."""

    def __init__(self, client: OpenAICompatibleClient, model: str, chat_format: str = "openai") -> None:
        self.client = client
        self.model = model
        self.chat_format = chat_format
        self.ledger: UsageSink | None = None  # every call's tokens go to the token ledger when set
        self.pacer: Pacer | None = None  # every call waits for the chat API's rate limits when set

    def complete(
        self,
        messages: list[dict[str, str]],
        model: str | None = None,
        params: dict[str, Any] | None = None,
        deadline: float | None = None,
        *,
        purpose: str = "answer",
        collection: str | None = None,
    ) -> ChatResult:
        """One completion with the generation ``params`` as given; ``deadline`` bounds its attempts (default:
        the client's). Its tokens are recorded under ``purpose`` (answer or rewrite) and ``collection``."""
        self._pace(messages, params)
        result = self._complete(messages, model or self.model, params, deadline)
        if self.ledger is not None:
            self.ledger.record(chat_usage(result.model, purpose, collection, result.usage, messages, result.text))
        return result

    def _pace(self, messages: list[dict[str, str]], params: dict[str, Any] | None) -> None:
        """Wait for the rate limits: the prompt's tokens (cl100k_base) and the most it may write count."""
        if self.pacer is None:
            return
        words = [str(m.get("content") or "") for m in messages if isinstance(m, dict)]
        most = (params or {}).get("max_tokens") or (params or {}).get("max_completion_tokens") or 0
        self.pacer.acquire(sum(TiktokenCounter("cl100k_base").count(words)) + int(most))

    def _complete(
        self, messages: list[dict[str, str]], chosen: str, params: dict[str, Any] | None, deadline: float | None
    ) -> ChatResult:
        if uses_anthropic(self.chat_format, chosen):
            answer = self.client.post_json(
                "/messages", anthropic.request_body(messages, chosen, params or {}), deadline
            )
            text, calls, finish, usage, named = anthropic.parse_message(answer)
            return ChatResult(text, named or chosen, finish, usage, calls, substituted=substitution(chosen, named))
        body = {**(params or {}), "model": chosen, "messages": messages}
        return parse_completion(self.client.post_json("/chat/completions", body, deadline), chosen)

    def stream(
        self,
        messages: list[dict[str, str]],
        model: str | None = None,
        params: dict[str, Any] | None = None,
        *,
        purpose: str = "answer",
        collection: str | None = None,
    ) -> Iterator[ChatDelta]:
        """Deltas of a streamed answer (recorded in the ledger when it ends, or is abandoned)."""
        chosen, text, usage = model or self.model, [], {}
        self._pace(messages, params)
        try:
            for delta in self._stream(messages, chosen, params):
                text.append(delta.text)
                usage.update(delta.usage or {})  # Anthropic's input and output tokens come in two events
                yield delta
        finally:
            if self.ledger is not None and (text or usage):  # a call refused before it answered costs nothing
                self.ledger.record(chat_usage(chosen, purpose, collection, usage, messages, "".join(text)))

    def _stream(
        self, messages: list[dict[str, str]], chosen: str, params: dict[str, Any] | None
    ) -> Iterator[ChatDelta]:
        """The API is asked to send token usage in a last chunk. A server that refuses ``stream_options``
        (some OpenAI-compatible ones do, with a 400 naming it) is asked again without it: the answer then
        streams without usage."""
        if uses_anthropic(self.chat_format, chosen):
            body = {**anthropic.request_body(messages, chosen, params or {}), "stream": True}
            events = self.client.stream_events("/messages", body, last="message_stop")
            for text, calls, finish, usage, named in anthropic.stream_pieces(events):
                substituted = substitution(chosen, named) if named else None  # named once, in message_start
                yield ChatDelta(text, finish, usage, calls, model=named, substituted=substituted)
            return
        body = {**(params or {}), "model": chosen, "messages": messages}
        started = False
        try:
            for delta in self._deltas({**body, "stream_options": {"include_usage": True}}):
                started = True
                yield delta
        except ProviderError as exc:
            if started or exc.status != 400 or "stream_options" not in str(exc):
                raise
            yield from self._deltas(body)

    def _deltas(self, body: dict[str, Any]) -> Iterator[ChatDelta]:
        """The stream's chunks as deltas; the first chunk naming the model is checked against the one asked."""
        checked = False
        for event in self.client.stream_chat(body):
            choices = event.get("choices") or []
            usage = event.get("usage")
            named = event.get("model") if isinstance(event.get("model"), str) else None
            substituted = None
            if named and not checked:
                checked, substituted = True, substitution(body["model"], named)
            if not choices:
                if usage or substituted:
                    yield ChatDelta(usage=usage, model=named, substituted=substituted)
                continue
            delta = choices[0].get("delta") or {}
            yield ChatDelta(delta.get("content") or "", choices[0].get("finish_reason"), usage, delta.get("tool_calls"),
                            token_logprobs(choices[0]), named, substituted)  # fmt: skip

    def close(self) -> None:
        self.client.close()


def parse_completion(body: Any, model: str) -> ChatResult:
    try:
        choice = body["choices"][0]
        message = choice["message"]
        text = message["content"] if "tool_calls" not in message else message.get("content")
    except (KeyError, IndexError, TypeError) as exc:
        raise ProviderResponseError(f"the chat response has no choices[0].message.content ({exc!r})") from exc
    calls = parse_tool_calls(message)
    if text is None and calls:
        text = ""
    if not isinstance(text, str):
        raise ProviderResponseError("the chat response content is not text")
    named = body.get("model") if isinstance(body.get("model"), str) else None
    return ChatResult(text, named or model, choice.get("finish_reason"), body.get("usage") or {}, calls,
                      token_logprobs(choice), substitution(model, named))  # fmt: skip


def token_logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A choice's ``logprobs.content`` (None when the model sent none)."""
    found = choice.get("logprobs")
    content = found.get("content") if isinstance(found, dict) else None
    return content if isinstance(content, list) else None
