"""Token-bounded request batches for an embedding provider."""

from __future__ import annotations

from dataclasses import dataclass, field

from searchsvc.errors import InvalidInputError
from searchsvc.providers.base import EmbeddingLimits


@dataclass
class EmbeddingBatch:
    hashes: list[str]
    texts: list[str]
    tokens: int
    sizes: list[int] = field(default_factory=list)  # each text's tokens

    def halves(self) -> tuple[EmbeddingBatch, EmbeddingBatch]:
        """The batch split in two, for a server that refused it as too large."""
        return self.split_at(len(self.texts) // 2)

    def split_at(self, cut: int) -> tuple[EmbeddingBatch, EmbeddingBatch]:
        """The first ``cut`` texts, and the rest."""
        sizes = self.sizes or [self.tokens // max(1, len(self.texts))] * len(self.texts)
        first = EmbeddingBatch(self.hashes[:cut], self.texts[:cut], sum(sizes[:cut]), sizes[:cut])
        return first, EmbeddingBatch(self.hashes[cut:], self.texts[cut:], sum(sizes[cut:]), sizes[cut:])


def plan_batches(pending: dict[str, tuple[str, int]], limits: EmbeddingLimits) -> list[EmbeddingBatch]:
    """Group ``hash -> (text, tokens)`` into batches within every request limit.

    Texts are ordered by length so each batch holds similar lengths (less padding
    for local models). A single text over ``max_tokens_per_input`` is a chunker bug,
    so it raises instead of being sent.
    """
    batches: list[EmbeddingBatch] = []
    current = EmbeddingBatch([], [], 0)
    request_tokens = limits.max_tokens_per_request
    if limits.tokens_per_minute:  # a request larger than a minute's allowance could never be sent
        request_tokens = min(request_tokens, limits.tokens_per_minute)
    for text_hash, (text, tokens) in sorted(pending.items(), key=lambda item: item[1][1]):
        if tokens > limits.max_tokens_per_input:
            raise InvalidInputError(
                f"a chunk of {tokens} tokens exceeds the model's {limits.max_tokens_per_input}-token input limit; "
                "lower SEARCHSVC_CHUNK_TOKENS (or the collection's chunk size)"
            )
        full = len(current.texts) >= limits.max_inputs_per_request
        if current.texts and (full or current.tokens + tokens > request_tokens):
            batches.append(current)
            current = EmbeddingBatch([], [], 0)
        current.hashes.append(text_hash)
        current.texts.append(text)
        current.tokens += tokens
        current.sizes.append(tokens)
    if current.texts:
        batches.append(current)
    return batches
