"""Embeddings from the AI/ML API or any OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from searchsvc.errors import ProviderResponseError
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider, normalise_rows
from searchsvc.providers.count_check import CheckedCounter
from searchsvc.providers.http_client import QUERY_NOT_EMBEDDED, CallPolicy, OpenAICompatibleClient
from searchsvc.providers.rate_limits import LearnedLimits
from searchsvc.providers.token_counting import TiktokenCounter, TokenCounter

KNOWN_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIEmbeddingProvider(EmbeddingProvider):
    """``POST /embeddings``; every response is checked before anything is stored."""

    kind = "openai"

    def __init__(
        self,
        client: OpenAICompatibleClient,
        model: str,
        limits: EmbeddingLimits,
        query: CallPolicy | None = None,
        tokenizer: TokenCounter | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.limits = limits
        self.query_policy = query or CallPolicy(deadline=6.0, retries=2, consequence=QUERY_NOT_EMBEDDED)
        # checked against the server's usage.prompt_tokens, and scaled when the server counts more
        self.tokenizer = CheckedCounter(tokenizer or TiktokenCounter("cl100k_base"), model)
        self._dimension = KNOWN_DIMENSIONS.get(model)

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One batch within the ingestion deadline. A batch of several texts that timed out is not sent again
        as it was (ProviderTimeoutError): the caller splits it. A single text is retried. The server's token
        count of the batch checks ours (``count_check``)."""
        return self._embed(texts, CallPolicy(resend_after_timeout=len(texts) == 1), check_count=True)

    def embed_query(self, text: str) -> np.ndarray:
        """A query is interactive: its call has a short deadline and few retries (``query_policy``)."""
        return self._embed([text], self.query_policy)[0]

    def _embed(self, texts: Sequence[str], policy: CallPolicy, check_count: bool = False) -> np.ndarray:
        if not texts:
            return np.empty((0, self._dimension or 0), dtype=np.float32)
        body = self.client.post_json("/embeddings", {"model": self.model, "input": list(texts)}, policy=policy)
        vectors = parse_embeddings(body, len(texts), self._dimension)
        if check_count and self.tokenizer.wants_check():
            usage = body.get("usage") if isinstance(body, dict) else None
            self.tokenizer.observe(texts, usage.get("prompt_tokens") if isinstance(usage, dict) else None)
        self._dimension = vectors.shape[1]
        return vectors

    def describe(self) -> str:
        return f"model {self.model} at {self.client.base_url}"

    def rate_limits(self) -> LearnedLimits | None:
        return self.client.learned

    def on_throttled(self, callback: Callable[[float], None]) -> None:
        self.client.on_throttled = callback

    def close(self) -> None:
        self.client.close()


def parse_embeddings(body: Any, expected: int, dimension: int | None) -> np.ndarray:
    """Vectors in input order (by ``index``), or ProviderResponseError naming what was wrong."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderResponseError("the embeddings response has no 'data' list; nothing was stored")
    if len(data) != expected:
        raise ProviderResponseError(f"asked for {expected} embeddings, got {len(data)}; nothing was stored")
    rows: list[Any] = [None] * expected
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
            raise ProviderResponseError(f"embedding #{position} has a missing, out-of-range or repeated index")
        if not isinstance(vector, list) or not vector:
            raise ProviderResponseError(f"embedding #{position} is not a list of numbers")
        if isinstance(vector[0], list):
            raise ProviderResponseError(per_token_message(position, len(vector)))
        rows[index] = vector
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise ProviderResponseError(f"embeddings of different lengths in one response: {sorted(lengths)}")
    got = lengths.pop()
    if dimension is not None and got != dimension:
        raise ProviderResponseError(f"expected {dimension}-dimensional embeddings, got {got}; nothing was stored")
    try:
        array = np.array(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ProviderResponseError(f"embeddings contain non-numbers: {exc}") from exc
    return normalise_rows(array)


def per_token_message(position: int, vectors: int) -> str:
    return (
        f"embedding #{position} is a list of {vectors} vectors, one per token, not one vector per text: the server "
        "runs the model without pooling. Start it with pooling (llama.cpp: --embeddings --pooling mean) or "
        "use an embedding model; nothing was stored"
    )
