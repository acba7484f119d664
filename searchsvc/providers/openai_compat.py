"""Embeddings from the AI/ML API or any OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from searchsvc.errors import ProviderError, ProviderResponseError
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider, normalise_rows
from searchsvc.providers.count_check import CheckedCounter
from searchsvc.providers.http_client import QUERY_NOT_EMBEDDED, CallPolicy, OpenAICompatibleClient
from searchsvc.providers.prompts import INPUT_TYPE, INPUT_TYPES, NO_PROMPTS, PromptStyle, configured, known_style
from searchsvc.providers.rate_limits import LearnedLimits
from searchsvc.providers.token_counting import TiktokenCounter, TokenCounter

FIELD_REFUSED = (400, 404, 422)  # how servers refuse a field they do not know
CALIBRATION_POLICY = CallPolicy(
    deadline=20.0,
    retries=2,
    consequence="The collection's answer floor was not measured; the model's fixed floor is used meanwhile",
)
PROBE_FAILED = (
    "Nothing was stored: whether the server reads input_type (to tell queries from passages) could not be "
    "checked; try again, or name the model's prompts in SEARCHSVC_EMBEDDING_PROMPTS to skip the check"
)
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
        prompts: PromptStyle = NO_PROMPTS,
    ) -> None:
        self.client = client
        self.model = model
        self.query_policy = query or CallPolicy(deadline=6.0, retries=2, consequence=QUERY_NOT_EMBEDDED)
        # checked against the server's usage.prompt_tokens, and scaled when the server counts more
        self.tokenizer = CheckedCounter(tokenizer or TiktokenCounter("cl100k_base"), model)
        self.prompts = prompts
        room = limits.max_tokens_per_input - self.tokenizer.count([prompts.passage])[0] if prompts.passage else 0
        self.limits = replace(limits, max_tokens_per_input=room) if room else limits  # the prefix fits too
        self._dimension = KNOWN_DIMENSIONS.get(model)

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """One batch within the ingestion deadline. A batch of several texts that timed out is not sent again
        as it was (ProviderTimeoutError): the caller splits it. A single text is retried. The server's token
        count of the batch checks ours (``count_check``)."""
        resend = CallPolicy(resend_after_timeout=len(texts) == 1)
        return self._embed(texts, resend, query=False, check_count=True)

    def embed_query(self, text: str) -> np.ndarray:
        """A query is interactive: its call has a short deadline and few retries (``query_policy``)."""
        return self._embed([text], self.query_policy, query=True)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several queries (a floor's calibration), in requests of at most the batch size, each bounded by
        ``CALIBRATION_POLICY``: a user's first answer may be waiting."""
        step = max(1, self.limits.max_inputs_per_request)
        parts = [self._embed(texts[i : i + step], CALIBRATION_POLICY, query=True) for i in range(0, len(texts), step)]
        return np.vstack(parts) if parts else np.zeros((0, self._dimension or 0), dtype=np.float32)

    def _embed(self, texts: Sequence[str], policy: CallPolicy, query: bool, check_count: bool = False) -> np.ndarray:
        if not texts:
            return np.empty((0, self._dimension or 0), dtype=np.float32)
        prefix = self.prompts.query if query else self.prompts.passage
        inputs = [prefix + text for text in texts] if prefix else list(texts)
        request: dict[str, Any] = {"model": self.model, "input": inputs}
        if self.prompts.input_type:
            request["input_type"] = INPUT_TYPES[0] if query else INPUT_TYPES[1]
        body = self.client.post_json("/embeddings", request, policy=policy)
        vectors = parse_embeddings(body, len(texts), self._dimension)
        if check_count and self.tokenizer.wants_check():
            usage = body.get("usage") if isinstance(body, dict) else None
            self.tokenizer.observe(inputs, usage.get("prompt_tokens") if isinstance(usage, dict) else None)
        self._dimension = vectors.shape[1]
        return vectors

    def describe(self) -> str:
        prompts = "" if self.prompts.empty else f" ({self.prompts.describe()})"
        return f"model {self.model} at {self.client.base_url}{prompts}"

    def rate_limits(self) -> LearnedLimits | None:
        return self.client.learned

    def on_throttled(self, callback: Callable[[float], None]) -> None:
        self.client.on_throttled = callback

    def close(self) -> None:
        self.client.close()


def remote_style(overrides: dict[str, Any], model: str, client: OpenAICompatibleClient) -> PromptStyle:
    """The prompts a new collection of API model ``model`` gets: SEARCHSVC_EMBEDDING_PROMPTS when it names the
    model, else the model card's prefixes, sent as text, unless the server reads ``input_type`` (it then adds
    the prefixes itself: sending them too would prefix twice)."""
    choice = configured(overrides, model)
    if isinstance(choice, PromptStyle):
        return choice
    if choice in ("none", "input_type"):
        return NO_PROMPTS if choice == "none" else INPUT_TYPE
    known = known_style(model)
    if choice == "text" or known.empty:
        return known
    return INPUT_TYPE if reads_input_type(client, model) else known


def reads_input_type(client: OpenAICompatibleClient, model: str) -> bool:
    """Whether the server embeds one text differently as a query and as a document. A server that refuses the
    field (a 4xx) or ignores it does not; one that cannot answer at all raises (nothing can be decided)."""
    policy = CallPolicy(deadline=30.0, retries=1, consequence=PROBE_FAILED)
    vectors = []
    for input_type in INPUT_TYPES:
        request = {"model": model, "input": ["searchsvc prompt probe"], "input_type": input_type}
        try:
            body = client.post_json("/embeddings", request, policy=policy)
        except ProviderError as exc:
            if exc.status in FIELD_REFUSED:  # a busy answer (408, 409, 425, 429) decides nothing: it raises
                return False
            raise
        vectors.append(parse_embeddings(body, 1, None)[0])
    return float(np.dot(vectors[0], vectors[1])) < 0.9999


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
