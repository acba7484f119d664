"""What fits a chat model's context: the thread a follow-up's rewrite is shown, and the sources an answer is.

A model's context length comes from ``SEARCHSVC_CHAT_CONTEXT_TOKENS`` (per model, ``"*"`` for the rest);
unknown, only the configured budgets apply (as for OpenAI's 128k-token models). Tokens are counted with
cl100k_base, so a margin is kept for models that count more.
"""

from __future__ import annotations

from searchsvc.errors import InvalidInputError
from searchsvc.providers.token_counting import TiktokenCounter

Messages = list[dict[str, str]]

REWRITE_MAX_TOKENS = 64  # a standalone query is a line, never an essay
TURN_TOKENS = 300  # one earlier message as a rewrite sees it (a long answer's start carries its topic)
ANSWER_RESERVE = 512  # kept for the answer when the request sets no max_tokens
PROMPT_MARGIN = 64  # the chat template's own tokens, and a count that differs from the model's
COUNT_SLACK = 1.15  # other tokenizers count up to ~15% more than cl100k_base (e5's SentencePiece: 17%)


def context_tokens(configured: dict[str, int], model: str) -> int | None:
    """The context length configured for ``model`` (or for every model, ``"*"``); None when unknown."""
    return configured.get(model, configured.get("*"))


def clip(counter: TiktokenCounter, text: str, tokens: int) -> str:
    """``text`` cut to its first ``tokens`` tokens."""
    ends = counter.token_ends(text)
    return text if len(ends) <= tokens else text[: ends[tokens - 1]] + " …"


def recent_turns(history: Messages, budget: int, counter: TiktokenCounter) -> Messages:
    """The newest messages of the thread that fit ``budget`` tokens, each cut to ``TURN_TOKENS``, in order."""
    kept: Messages = []
    for message in reversed(history):
        text = clip(counter, str(message.get("content") or ""), TURN_TOKENS)
        cost = counter.count([text])[0] + 4
        if cost > budget:
            break
        budget -= cost
        kept.insert(0, {**message, "content": text})
    return kept


def sources_budget(
    configured: int, context: int | None, prompt_tokens: int, answer_tokens: int | None, model: str
) -> int:
    """Tokens the numbered sources may take: the configured budget, less than what the model's context leaves
    once the prompt around them and the answer's room are counted."""
    if context is None:
        return configured
    room = int(context / COUNT_SLACK) - prompt_tokens - (answer_tokens or ANSWER_RESERVE) - PROMPT_MARGIN
    if room <= 0:
        raise InvalidInputError(
            f"the question and the answer's room ({answer_tokens or ANSWER_RESERVE} tokens) do not fit the "
            f"{context}-token context of {model!r} (SEARCHSVC_CHAT_CONTEXT_TOKENS): ask a shorter question or "
            "set a smaller max_tokens"
        )
    return min(configured, room)
