"""Token counts checked against the server's own (``usage.prompt_tokens`` of an embeddings response).

An API model without its tokenizer configured is counted with ``cl100k_base``, which undercounts others
(multilingual-e5's SentencePiece gives about 17 % more tokens): chunks then overflow the model's input. So
the counter compares its count of a request's texts with the count the server reports. When they disagree by
more than ``TOLERANCE``, it says so once (a warning naming SEARCHSVC_TOKENIZERS) and, when the server counts
more, counts every text scaled by the largest ratio seen, so the chunks and batches that follow fit the
server's tokenizer. A server that counts fewer is left alone: an overcount costs only smaller chunks.

Servers count their own prefixes and special tokens too: up to ``SERVER_OVERHEAD`` tokens a text are allowed
for them, and batches of short texts are not judged.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

from searchsvc.providers.token_counting import TokenCounter

log = logging.getLogger("searchsvc.provider")
TOLERANCE = 0.03  # counts within 3 % of the server's are taken as agreeing
CHECKED_FIRST = 5  # the first responses are all checked, then one in CHECK_EVERY (counting costs CPU)
CHECK_EVERY = 20
SERVER_OVERHEAD = 8  # tokens a server may add to each text of its own: a prefix ("passage: "), special tokens
MIN_AVERAGE = 32  # batches of shorter texts on average are not judged (the overhead would dominate)


class CheckedCounter:
    """``inner``'s counts, scaled by ``ratio`` once the server showed it counts more (``observe``)."""

    def __init__(self, inner: TokenCounter, model: str) -> None:
        self.inner, self.model = inner, model
        self.name = inner.name
        self.special_tokens = inner.special_tokens
        self.ratio = 1.0
        self.disagreement: float | None = None  # the server's count over ours, last time they disagreed
        self._responses = 0
        self._lock = threading.Lock()

    def count(self, texts: Sequence[str]) -> list[int]:
        counts = self.inner.count(texts)
        return counts if self.ratio == 1.0 else [math.ceil(n * self.ratio) for n in counts]

    def token_ends(self, text: str) -> list[int]:
        """Each token's end, every one repeated as often as it counts once scaled (so a chunk cut after N of
        them holds N of the server's tokens)."""
        ends = self.inner.token_ends(text)
        if self.ratio == 1.0:
            return ends
        scaled: list[int] = []
        for position, end in enumerate(ends):
            scaled.extend([end] * (math.floor((position + 1) * self.ratio) - math.floor(position * self.ratio)))
        return scaled

    def wants_check(self) -> bool:
        with self._lock:
            self._responses += 1
            return self._responses <= CHECKED_FIRST or self._responses % CHECK_EVERY == 0

    def observe(self, texts: Sequence[str], reported: object) -> None:
        """Compare our count of ``texts`` (a batch of passages) with the server's ``reported`` prompt tokens.
        Up to ``SERVER_OVERHEAD`` tokens a text are the server's own (a prefix, special tokens); batches of
        short texts, where that overhead would dominate, are not judged."""
        if not isinstance(reported, int) or isinstance(reported, bool) or reported <= 0 or not texts:
            return
        ours = sum(self.inner.count(texts))
        if ours < MIN_AVERAGE * len(texts):
            return
        beyond_overhead = reported - SERVER_OVERHEAD * len(texts)
        if beyond_overhead > ours * (1 + TOLERANCE):
            ratio = beyond_overhead / ours
        elif reported < ours * (1 - TOLERANCE):
            ratio = reported / ours
        else:
            return
        with self._lock:
            first = self.disagreement is None
            self.disagreement = ratio
            grew = ratio > self.ratio * (1 + TOLERANCE)
            if grew:
                self.ratio = ratio
        if first or grew:
            log.warning(
                "the embeddings server counted %d tokens where %s counts %d (x%.2f) for %s; %s. Set "
                "SEARCHSVC_TOKENIZERS to the model's tokenizer.json for exact counts",
                reported, self.inner.name, ours, ratio, self.model,
                "counting more from now on so chunks fit" if grew else "left as it is (the server counts fewer)",
                extra={"fields": {"event": "token_count_disagrees", "model": self.model, "ratio": round(ratio, 3)}},
            )  # fmt: skip
