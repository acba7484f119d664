"""What each embedding and chat call used, as the providers report it to the token ledger.

Providers know the model and the tokens; the caller knows what for (``purpose``) and, for searches, the
collection (``CURRENT_COLLECTION``, set around a search in the same thread). The ledger itself, with its
prices, lives in SQL (``searchsvc.storage.usage_ledger``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from searchsvc.providers.token_counting import TiktokenCounter

PURPOSES = ("ingest", "query", "answer", "rewrite", "embeddings", "migrate", "calibrate")
CURRENT_COLLECTION: ContextVar[str | None] = ContextVar("searchsvc_usage_collection", default=None)


@dataclass(frozen=True)
class Usage:
    kind: str  # local or openai
    model: str
    purpose: str  # one of PURPOSES
    collection: str | None
    input_tokens: int
    output_tokens: int = 0
    requests: int = 1
    estimated: bool = False  # counted here (cl100k_base or the model's tokenizer), not the API's own usage


class UsageSink(Protocol):
    def record(self, usage: Usage) -> None: ...
    def close(self) -> None: ...


def chat_usage(
    model: str, purpose: str, collection: str | None, reported: dict[str, Any] | None, messages: list[Any], text: str
) -> Usage:
    """A chat call's usage: the API's when it sent one, else counted here with cl100k_base."""
    if reported and ("prompt_tokens" in reported or "input_tokens" in reported):
        prompt = int(reported.get("prompt_tokens", reported.get("input_tokens", 0)) or 0)
        completion = int(reported.get("completion_tokens", reported.get("output_tokens", 0)) or 0)
        return Usage("openai", model, purpose, collection, prompt, completion)
    counter = TiktokenCounter("cl100k_base")
    words = [str(m.get("content") or "") if isinstance(m, dict) else str(m) for m in messages]
    prompt = sum(counter.count(words)) if words else 0
    completion = counter.count([text])[0] if text else 0
    return Usage("openai", model, purpose, collection, prompt, completion, estimated=True)
