"""A reply from the chat model without retrieval: the Responses API without a ``file_search`` tool.

The caller's thread goes to the model as is (with its function tools and their outputs); the text is not
checked for citations, as there are no sources. The events are an answer's, with no sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from searchsvc.answering.answer_models import ChatDraft
from searchsvc.answering.answerer import written_events
from searchsvc.answering.conversation import ConversationMemory
from searchsvc.answering.types import Answer, AnswerEvent
from searchsvc.providers.chat import ChatProvider


def plain_events(
    chat: ChatProvider,
    messages: list[dict[str, Any]],
    question: str,
    model: str | None,
    params: dict[str, Any],
    live: bool,
    remember: tuple[ConversationMemory, str] | None = None,
) -> Iterator[AnswerEvent]:
    """``sources`` (none), ``delta`` pieces and ``done``; with ``remember`` (memory, conversation id) a turn
    answered in words is added to the conversation."""
    draft = ChatDraft(chat, messages, [], model, params, live, cites=False)
    answer = Answer(question, question, "generative", True, [])
    yield AnswerEvent("sources", answer)
    if not (yield from written_events(draft, answer, live)):
        return
    reply = draft.reply
    answer.text, answer.model, answer.usage, answer.latency_ms = reply.text, reply.model, reply.usage, reply.latency_ms
    answer.finish_reason, answer.tool_calls, answer.answered = reply.finish_reason, reply.tool_calls, reply.answered
    answer.logprobs, answer.model_substituted = reply.logprobs, reply.model_substituted
    if remember is not None and reply.text and not reply.tool_calls:  # calls pending: not a turn yet
        memory, conversation_id = remember
        answer.conversation_id = memory.remember(conversation_id, "", question, question, reply.text, [])
    yield AnswerEvent("done", answer)
