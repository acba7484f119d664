"""Citation markers in generated answers: keep those that point at a real source, drop and count the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
PARAGRAPH = re.compile(r"\n\s*\n")
STRUCTURED_LINE = re.compile(r"^(?:#{1,6}\s|[-*+]\s|\d+[.)]\s|>|\||```|[=\-~^*]{3,}$)")


@dataclass
class CitationCheck:
    text: str
    cited: list[int]  # valid source numbers, in order of first use
    invalid: int  # markers (or numbers inside markers) that pointed at no source


def check_citations(text: str, source_count: int) -> CitationCheck:
    """Rewrite ``[n]`` / ``[n, m]`` markers keeping only numbers 1..source_count."""
    cited: list[int] = []
    invalid = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal invalid
        numbers = [int(n) for n in match.group(1).split(",")]
        kept = [n for n in numbers if 1 <= n <= source_count]
        invalid += len(numbers) - len(kept)
        for n in kept:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in kept)

    cleaned = MARKER.sub(rewrite, text)
    if invalid:
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)  # no space left where a marker was dropped
    return CitationCheck(cleaned, cited, invalid)


class StreamingCitationFilter:
    """Applies ``check_citations`` to a stream of deltas without ever emitting an invalid marker.

    Text after an unclosed ``[`` is held back until the bracket closes (or grows too long to be
    a marker), so a client never sees ``[7]`` when there are only three sources.
    """

    HOLD_LIMIT = 24

    def __init__(self, source_count: int) -> None:
        self.source_count = source_count
        self.pending = ""
        self.cited: list[int] = []
        self.invalid = 0

    def feed(self, delta: str) -> str:
        self.pending += delta
        cut = self._safe_prefix_length()
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return self._check(ready)

    def flush(self) -> str:
        ready, self.pending = self.pending, ""
        return self._check(ready)

    def _safe_prefix_length(self) -> int:
        open_at = self.pending.rfind("[")
        if open_at == -1 or "]" in self.pending[open_at:] or len(self.pending) - open_at > self.HOLD_LIMIT:
            return len(self.pending)
        return open_at

    def _check(self, text: str) -> str:
        result = check_citations(text, self.source_count)
        self.invalid += result.invalid
        for n in result.cited:
            if n not in self.cited:
                self.cited.append(n)
        return result.text


def prose_sentences(text: str) -> list[str]:
    """Sentences with soft line wraps joined; list items, headings and table rows stay one per line."""
    sentences: list[str] = []
    for paragraph in PARAGRAPH.split(text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        structured = any(STRUCTURED_LINE.match(line) for line in lines)
        pieces = lines if structured else SENTENCE.split(" ".join(lines))
        sentences.extend(" ".join(p.split()) for p in pieces if p.strip())
    return sentences


def verbatim(source_text: str, sentence: str) -> str:
    """The exact span of the source that a whitespace-normalised sentence came from."""
    words = sentence.split()
    if not words:
        return sentence
    match = re.search(r"\s+".join(re.escape(w) for w in words), source_text)
    return match.group(0) if match else sentence


def best_quote(source_text: str, claim: str) -> str:
    """The sentence of a source sharing the most words with the claim citing it, quoted verbatim."""
    claim_words = {w.lower() for w in WORD.findall(claim)}
    sentences = prose_sentences(source_text)
    if not sentences:
        return source_text[:300]
    best = max(sentences, key=lambda s: len(claim_words & {w.lower() for w in WORD.findall(s)}))
    return verbatim(source_text, best)[:500]


def claims_by_citation(text: str) -> dict[int, str]:
    """For each cited number, the sentence of the answer that cites it first."""
    claims: dict[int, str] = {}
    for sentence in SENTENCE.split(text):
        for match in MARKER.finditer(sentence):
            for n in (int(x) for x in match.group(1).split(",")):
                claims.setdefault(n, MARKER.sub("", sentence).strip())
    return claims
