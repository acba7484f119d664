"""The embedding provider interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from searchsvc.errors import ProviderResponseError
from searchsvc.providers.prompts import NO_PROMPTS, PromptStyle
from searchsvc.providers.rate_limits import LearnedLimits
from searchsvc.providers.token_counting import TokenCounter


@dataclass(frozen=True)
class EmbeddingLimits:
    """What one request to the provider may carry."""

    max_inputs_per_request: int
    max_tokens_per_input: int
    max_tokens_per_request: int
    max_in_flight: int = 1
    request_timeout: float | None = None  # seconds one request may wait for its answer (None: no limit known)
    tokens_per_minute: int | None = None  # the API's rate limits, paced client-side (None: learned from headers)
    requests_per_minute: int | None = None


class EmbeddingProvider(ABC):
    """Turns texts into unit-length float32 vectors.

    ``embed_documents`` and ``embed_query`` are separate because some models embed a query and a passage
    differently (``prompts``); MiniLM and OpenAI's models do not.
    """

    kind: str  # "local" or "openai"
    model: str
    limits: EmbeddingLimits
    tokenizer: TokenCounter
    prompts: PromptStyle = NO_PROMPTS  # how a query is told from a passage (recorded with the collection)

    @property
    def vectors_key(self) -> str:
        """The key of this provider's vectors in SQL: the model, and its prompts when it has any."""
        return self.prompts.vectors_key(self.model)

    @property
    @abstractmethod
    def dimension(self) -> int | None:
        """Vector length, or None while unknown (a remote model not yet called)."""

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in input order, L2-normalised; shape (len(texts), dimension)."""

    def embed_query(self, text: str) -> np.ndarray:
        """A single query vector of shape (dimension,)."""
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several queries at once (a calibration's probes), embedded as queries; one row per text."""
        return np.stack([self.embed_query(text) for text in texts])

    def describe(self) -> str:
        return f"{self.kind} model {self.model}"

    def rate_limits(self) -> LearnedLimits | None:
        """The limits the API announced in its last response's headers (None: none, or not an API)."""
        return None

    def on_throttled(self, callback: Callable[[float], None]) -> None:  # noqa: B027  (an API's providers hook it)
        """Have ``callback`` told of each 429, with the seconds the API asked to hold off."""

    def close(self) -> None:  # noqa: B027  (optional hook: most providers hold nothing to release)
        """Release network clients or other resources."""


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row; refuses non-finite values or all-zero rows."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ProviderResponseError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ProviderResponseError("the provider returned NaN or infinite values; nothing was stored")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ProviderResponseError("the provider returned an all-zero vector; nothing was stored")
    return vectors / norms
