"""An in-process embedding model for storage tests: the same bag-of-words vectors as the fake HTTP server,
without a server. Deterministic, so two runs (or two processes) embed a text identically."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider, normalise_rows
from searchsvc.providers.token_counting import TiktokenCounter
from tests.fake_openai import bag_of_words_vector


class FakeEmbedder(EmbeddingProvider):
    kind = "fake"

    def __init__(self, dimension: int = 64, model: str = "bag-of-words") -> None:
        self.model = model
        self._dimension = dimension
        self.limits = EmbeddingLimits(
            max_inputs_per_request=64, max_tokens_per_input=8191, max_tokens_per_request=50_000
        )
        self.tokenizer = TiktokenCounter()
        self.calls: list[int] = []  # inputs per call, so tests can tell what was (not) embedded again

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return normalise_rows(np.array([bag_of_words_vector(t, self._dimension) for t in texts], dtype=np.float32))
