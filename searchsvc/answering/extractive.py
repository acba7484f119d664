"""Answers without a chat model: the retrieved sentences closest in meaning to the question.

Only prose is quoted: headings, lead-ins ending in ":" and code are left out. The best sentence must
be close enough to the question (``min_score``, calibrated on tests/fixtures/answerability.jsonl by
bench/answerability.py), else the answer is "I don't know".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from searchsvc.answering.types import AnswerSource
from searchsvc.citations import prose_sentences
from searchsvc.providers.base import EmbeddingProvider

SENTENCES = 3
MIN_WORDS = 4
HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")
MARKUP_PREFIX = re.compile(r"^(?:[-*+]\s+|\d+[.)]\s+|>\s*)+")


@dataclass
class Extract:
    text: str
    cited: list[int]
    best_score: float  # cosine similarity of the best sentence to the question


def candidate_sentences(text: str, headings: Sequence[str] = ()) -> list[str]:
    """Prose sentences of a chunk: no headings (Markdown ``#`` lines, or the chunk's heading path), no
    lead-ins that end in ":", no code or markup-only lines."""
    heading_texts = {" ".join(h.split()).lower() for h in headings}
    kept = []
    for piece in prose_sentences(text):
        if HEADING_LINE.match(piece):
            continue
        piece = " ".join(MARKUP_PREFIX.sub("", piece).split())
        words = piece.split()
        alpha = sum(ch.isalpha() for ch in piece)
        if (
            len(words) < MIN_WORDS
            or piece.endswith(":")
            or piece.lower().rstrip(".") in heading_texts
            or "```" in piece
            or alpha < 0.6 * len(piece.replace(" ", ""))
        ):
            continue
        kept.append(piece)
    return kept


def extract(embedder: EmbeddingProvider, query: str, sources: list[AnswerSource]) -> Extract | None:
    """The best sentences of the sources, each cited; sources without prose (code, tables) are quoted whole.
    A sentence found in several sources (a paragraph two documents share) is quoted once, citing each."""
    found: dict[str, list[int]] = {}
    for s in sources:
        for text in candidate_sentences(s.text, [*s.heading_path, s.title or ""]):
            found.setdefault(text, []).append(s.number)
    if not found:
        for s in sources:
            if s.text.strip():
                found.setdefault(" ".join(s.text.split()), []).append(s.number)
    if not found:
        return None
    sentences = list(found.items())
    query_vector = embedder.embed_query(query)
    scores = embedder.embed_documents([text for text, _ in sentences]) @ query_vector
    order = np.argsort(-scores)[:SENTENCES]
    best = [sentences[i] for i in order]
    text = " ".join(sentence.rstrip(".!?") + " " + "".join(f"[{n}]" for n in dict.fromkeys(numbers)) + "."
                    for sentence, numbers in best)  # fmt: skip
    cited = list(dict.fromkeys(n for _, numbers in best for n in numbers))
    return Extract(text, cited, float(scores[order[0]]))
