"""What writes an answer from numbered sources: a chat model, or, without one, extractive answering
standing in for it behind the same two calls (rewrite a follow-up question; draft an answer)."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from searchsvc.answering.budget import (
    COUNT_SLACK,
    REWRITE_MAX_TOKENS,
    context_tokens,
    recent_turns,
    sources_budget,
)
from searchsvc.answering.extractive import extract
from searchsvc.answering.prompt import REWRITE_PROMPT, SYSTEM_PROMPT, Messages, answer_prompt, rewrite_prompt
from searchsvc.answering.types import AnswerSource, ModelReply
from searchsvc.citations import StreamingCitationFilter
from searchsvc.config import Settings
from searchsvc.errors import ProviderError, ProviderResponseError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.providers.token_counting import TiktokenCounter
from searchsvc.providers.tool_calls import ToolCallPieces

log = logging.getLogger("searchsvc.answering")
NO_ANSWER = "I don't know: nothing in the collection is relevant enough to answer that question."


class Draft:
    """An answer being written: the sources the model was shown, the text in pieces, then ``reply``."""

    def __init__(self, sources: list[AnswerSource]) -> None:
        self.sources = sources
        self.reply = ModelReply(text="", cited=[])
        self.collection: str | None = None  # whose sources: the token ledger records the answer under it

    def pieces(self) -> Iterator[str]:
        """The answer text in order; ``reply`` is complete once this is exhausted."""
        yield self.reply.text


class Refusal(Draft):
    """'I don't know': nothing retrieved, or nothing retrieved close enough to the question."""

    def __init__(self, sources: list[AnswerSource]) -> None:
        super().__init__(sources)
        self.reply = ModelReply(text=NO_ANSWER, cited=[], answered=False)


def joined_with_last_question(history: Messages, question: str) -> str:
    """A follow-up made standalone without a model: the thread's last question, then this one."""
    last_user = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
    return f"{last_user} {question}".strip()


class AnswerModel(ABC):
    mode: str

    @abstractmethod
    def rewrite(self, history: Messages, question: str, model: str | None = None) -> tuple[str, dict[str, Any]]:
        """The follow-up ``question`` as a query that stands without the conversation, and its token usage."""

    @abstractmethod
    def draft(
        self,
        question: str,
        sources: list[AnswerSource],
        model: str | None,
        params: dict[str, Any],
        live: bool,
        instructions: str | None = None,
        turns: Messages | None = None,
    ) -> Draft:
        """An answer to ``question`` from ``sources``; ``live`` streams it as it is written; ``instructions``
        are the caller's, shown to a chat model after searchsvc's own; ``turns`` (function calls and their
        outputs) come after the question."""


class ExtractiveAnswerModel(AnswerModel):
    """The retrieved sentences closest to the question, each cited; no chat model, no key."""

    mode = "extractive"

    def __init__(self, embedder: EmbeddingProvider, settings: Settings) -> None:
        self.embedder = embedder
        self.sentence_floor = settings.extractive_floor(embedder.model)

    def rewrite(self, history: Messages, question: str, model: str | None = None) -> tuple[str, dict[str, Any]]:
        return joined_with_last_question(history, question), {}

    def draft(
        self,
        question: str,
        sources: list[AnswerSource],
        model: str | None,
        params: dict[str, Any],
        live: bool,
        instructions: str | None = None,
        turns: Messages | None = None,
    ) -> Draft:
        found = extract(self.embedder, question, sources)
        if found is None or (self.sentence_floor is not None and found.best_score < self.sentence_floor):
            return Refusal(sources)
        draft = Draft(sources)
        draft.reply = ModelReply(text=found.text, cited=found.cited)
        return draft


class ChatAnswerModel(AnswerModel):
    """A chat model shown the sources that fit the token budget, its citations checked as it writes."""

    mode = "generative"

    def __init__(self, chat: ChatProvider, settings: Settings) -> None:
        self.chat = chat
        self.context_tokens = settings.answer_context_tokens
        self.contexts = settings.chat_context_tokens
        self.history_tokens = settings.rewrite_history_tokens
        self.rewrite_deadline = settings.query_deadline
        self.counter = TiktokenCounter()

    def rewrite(self, history: Messages, question: str, model: str | None = None) -> tuple[str, dict[str, Any]]:
        """Rewritten by the answering model within the query deadline; when that fails, the thread's last
        question joined to this one is retrieved with instead (as without a chat model), and the answer goes on."""
        turns = recent_turns(history, self._history_budget(model, question), self.counter)
        params = {"temperature": 0, "max_tokens": REWRITE_MAX_TOKENS}  # a query, never an essay
        try:
            result = self.chat.complete(rewrite_prompt(turns, question), model, params, self.rewrite_deadline,
                                        purpose="rewrite")  # fmt: skip
        except ProviderError as exc:
            log.warning("rewriting a follow-up failed (%s); retrieving with the thread's last question", exc)
            return joined_with_last_question(history, question), {}
        query = result.text.strip()
        if result.finish_reason == "length" or self.counter.count([query])[0] > REWRITE_MAX_TOKENS:
            log.warning("the rewrite of a follow-up ran past %d tokens; retrieving with the thread's last question",
                        REWRITE_MAX_TOKENS)  # fmt: skip
            return joined_with_last_question(history, question), result.usage
        return query or question, result.usage

    def _history_budget(self, model: str | None, question: str) -> int:
        """Tokens of the thread a rewrite is shown: the setting, within what the model's context leaves."""
        context = context_tokens(self.contexts, model or self.chat.model)
        if context is None:
            return self.history_tokens
        asked = self.counter.count([REWRITE_PROMPT, question])
        return max(0, min(self.history_tokens, int(context / COUNT_SLACK) - sum(asked) - REWRITE_MAX_TOKENS - 64))

    def draft(
        self,
        question: str,
        sources: list[AnswerSource],
        model: str | None,
        params: dict[str, Any],
        live: bool,
        instructions: str | None = None,
        turns: Messages | None = None,
    ) -> Draft:
        functions = bool(params.get("tools"))
        chosen = model or self.chat.model
        around = self.counter.count([SYSTEM_PROMPT, instructions or "", question, str(turns or "")])
        answer_room = params.get("max_tokens") or params.get("max_completion_tokens")
        budget = sources_budget(self.context_tokens, context_tokens(self.contexts, chosen), sum(around) + 40,
                                answer_room, chosen)  # fmt: skip
        messages, used = answer_prompt(question, sources, budget, self.counter, instructions, functions)
        return ChatDraft(self.chat, [*messages, *(turns or [])], used, model, params, live)


class ChatDraft(Draft):
    """A chat model's answer. Its ``[n]`` markers are checked against the sources as they stream, unless
    ``cites`` is off (a plain reply, no sources); calls of the caller's functions are gathered into
    ``reply.tool_calls``."""

    def __init__(
        self,
        chat: ChatProvider,
        messages: Messages,
        sources: list[AnswerSource],
        model: str | None,
        params: dict[str, Any],
        live: bool,
        cites: bool = True,
    ) -> None:
        super().__init__(sources)
        self.chat, self.messages, self.model, self.params, self.live = chat, messages, model, params, live
        self.cites = cites

    def pieces(self) -> Iterator[str]:
        guard = StreamingCitationFilter(len(self.sources)) if self.cites else None
        started = time.perf_counter()
        written: list[str] = []
        for text in self._texts():
            written.append(guard.feed(text) if guard else text)
            yield written[-1]
        written.append(guard.flush() if guard else "")
        yield written[-1]
        self.reply.text = "".join(written)
        if guard:
            self.reply.cited, self.reply.invalid_citations = guard.cited, guard.invalid
        if not self.reply.text.strip() and not self.reply.tool_calls:
            raise ProviderResponseError(
                f"the chat model ended without writing anything (finish_reason {self.reply.finish_reason!r}): a "
                "proxy may have cut the answer short; ask again"
            )
        self.reply.answered = bool(self.reply.text) or not self.reply.tool_calls  # calls alone: not answered yet
        self.reply.latency_ms = round((time.perf_counter() - started) * 1000, 1)

    def _texts(self) -> Iterator[str]:
        """The model's text as it comes (whole, when not live); its function calls into ``reply``."""
        reply = self.reply
        if not self.live:
            result = self.chat.complete(self.messages, self.model, self.params, collection=self.collection)
            reply.model, reply.usage, reply.finish_reason = result.model, result.usage, result.finish_reason
            reply.tool_calls, reply.logprobs = result.tool_calls, result.logprobs
            reply.model_substituted = result.substituted
            yield result.text
            return
        calls = ToolCallPieces()
        for delta in self.chat.stream(self.messages, self.model, self.params, collection=self.collection):
            reply.usage = delta.usage or reply.usage
            reply.finish_reason = delta.finish_reason or reply.finish_reason
            reply.model = delta.model or reply.model
            reply.model_substituted = delta.substituted or reply.model_substituted
            calls.feed(delta.tool_calls)
            if delta.logprobs is not None:
                reply.logprobs = [*(reply.logprobs or []), *delta.logprobs]
            yield delta.text
        reply.tool_calls = calls.calls()


def answer_model(chat: ChatProvider | None, embedder: EmbeddingProvider, settings: Settings) -> AnswerModel:
    """The chat model when one is configured, else extractive answering in its place."""
    return ChatAnswerModel(chat, settings) if chat is not None else ExtractiveAnswerModel(embedder, settings)
