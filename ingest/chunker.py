"""Token-bounded chunks that split at structure first: sections, then sentences, then tokens.

Each chunk is an exact span of the parsed text (``text[start:end]``) inside one
section (same heading path and page). What is embedded is a short context header
(title and heading path) followed by the chunk text; header plus text never
exceed the model's input limit.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from ingest.document import Block, ParsedDocument
from searchsvc.errors import InvalidInputError
from searchsvc.providers.token_counting import TokenCounter

SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])[\"')\]]*\s+|\n\s*\n")


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    text: str
    embed_text: str
    token_count: int  # tokens of embed_text, special tokens excluded
    heading_path: tuple[str, ...]
    page: int | None
    line_start: int | None
    line_end: int | None


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int


@dataclass
class _Section:
    heading_path: tuple[str, ...]
    page: int | None
    blocks: list[Block]


class Chunker:
    """Cuts parsed documents into chunks of at most ``max_tokens`` model tokens."""

    def __init__(self, tokenizer: TokenCounter, max_tokens: int, overlap: int) -> None:
        if overlap >= max_tokens:
            raise InvalidInputError("the chunk overlap must be smaller than the chunk size (SEARCHSVC_CHUNK_OVERLAP)")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap

    def chunk(self, doc: ParsedDocument, title: str | None = None) -> list[ChunkSpan]:
        title = title or doc.title
        newlines = [i for i, ch in enumerate(doc.text) if ch == "\n"] if doc.line_numbers else None
        spans: list[ChunkSpan] = []
        for section in self._sections(doc):
            header = embed_header(title, section.heading_path)
            header_tokens = self._count([header])[0] if header else 0
            if header_tokens > self.max_tokens // 4:
                header, header_tokens = "", 0
            budget = self.max_tokens - header_tokens - (1 if header else 0)
            for start, end in self._pack(doc.text, section, budget):
                spans.extend(self._finish(doc, start, end, header, section, newlines))
        return spans

    def _sections(self, doc: ParsedDocument) -> list[_Section]:
        sections: list[_Section] = []
        for block in doc.blocks:
            last = sections[-1] if sections else None
            if last and last.heading_path == block.heading_path and last.page == block.page:
                last.blocks.append(block)
            else:
                sections.append(_Section(block.heading_path, block.page, [block]))
        return self._merge_small_parents(sections)

    def _merge_small_parents(self, sections: list[_Section]) -> list[_Section]:
        """A heading followed only by a sub-heading joins its first child section."""
        merged: list[_Section] = []
        pending: list[Block] = []
        for index, section in enumerate(sections):
            blocks = pending + section.blocks
            pending = []
            nxt = sections[index + 1] if index + 1 < len(sections) else None
            heading_only = all(b.kind == "heading" for b in section.blocks)
            if (
                heading_only
                and nxt is not None
                and nxt.page == section.page
                and _extends(nxt.heading_path, section.heading_path)
            ):
                pending = blocks
            else:
                merged.append(_Section(section.heading_path, section.page, blocks))
        return merged

    def _pack(self, text: str, section: _Section, budget: int) -> list[tuple[int, int]]:
        """Greedy packing of sentence units into spans of at most ``budget`` tokens, with overlap."""
        units = self._units(text, section.blocks, budget)
        spans: list[tuple[int, int]] = []
        current: list[_Unit] = []
        used = 0
        for unit in units:
            if current and used + unit.tokens > budget:
                spans.append((current[0].start, current[-1].end))
                current = self._overlap_tail(text, current, budget - unit.tokens)
                used = sum(u.tokens for u in current)
            current.append(unit)
            used += unit.tokens
        if current:
            spans.append((current[0].start, current[-1].end))
        return spans

    def _overlap_tail(self, text: str, units: list[_Unit], room: int) -> list[_Unit]:
        """The last units, repeated at the start of the next chunk: at most ``overlap`` tokens of the
        repeated text itself (the space between units can add tokens to their sum)."""
        limit = min(self.overlap, room)
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(units):
            if total + unit.tokens > limit:
                break
            if tail and self._count([text[unit.start : tail[-1].end]])[0] > limit:
                break
            tail.insert(0, unit)
            total += unit.tokens
        return tail

    def _units(self, text: str, blocks: list[Block], budget: int) -> list[_Unit]:
        pieces: list[tuple[int, int]] = []
        for block in blocks:
            pieces.extend(_sentences(text, block))
        counts = self._count([text[s:e] for s, e in pieces])
        units: list[_Unit] = []
        for (start, end), tokens in zip(pieces, counts, strict=True):
            if tokens <= budget:
                units.append(_Unit(start, end, tokens))
            else:
                units.extend(self._token_windows(text, start, end, budget))
        return units

    def _token_windows(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        """A sentence longer than the budget, cut at token boundaries."""
        ends = [start + e for e in self.tokenizer.token_ends(text[start:end])]
        windows: list[_Unit] = []
        pos = start
        for index in range(0, len(ends), budget):
            window_end = ends[min(index + budget, len(ends)) - 1]
            if window_end > pos:
                windows.append(_Unit(pos, window_end, min(budget, len(ends) - index)))
                pos = window_end
        return windows

    def _finish(
        self, doc: ParsedDocument, start: int, end: int, header: str, section: _Section, newlines: list[int] | None
    ) -> list[ChunkSpan]:
        """Build the chunk, re-counting the exact embedded text; halve it if it is still too long."""
        body = doc.text[start:end]
        embed_text = f"{header}\n{body}" if header else body
        tokens = self._count([embed_text])[0]
        if tokens > self.max_tokens and end - start > 1:
            cut = _split_point(doc.text, start, end)
            return self._finish(doc, start, cut, header, section, newlines) + self._finish(
                doc, cut, end, header, section, newlines
            )
        line_start = line_end = None
        if newlines is not None:
            line_start = bisect.bisect_right(newlines, start - 1) + 1
            line_end = bisect.bisect_right(newlines, max(start, end - 1) - 1) + 1
        return [
            ChunkSpan(start, end, body, embed_text, tokens, section.heading_path, section.page, line_start, line_end)
        ]

    def _count(self, texts: list[str]) -> list[int]:
        return self.tokenizer.count(texts) if texts else []


def _sentences(text: str, block: Block) -> list[tuple[int, int]]:
    """Sentence spans of a block (lines, for code), whitespace trimmed, never empty."""
    segment = text[block.start : block.end]
    splitter = re.compile(r"\n") if block.kind == "code" else SENTENCE_END
    spans, pos = [], 0
    for match in splitter.finditer(segment):
        spans.append((pos, match.start() if block.kind == "code" else match.end()))
        pos = match.end()
    spans.append((pos, len(segment)))
    result = []
    for s, e in spans:
        piece = segment[s:e]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            result.append((block.start + s + lead, block.start + s + len(piece.rstrip())))
    return result


def _split_point(text: str, start: int, end: int) -> int:
    middle = (start + end) // 2
    space = text.rfind(" ", start + 1, middle + 1)
    return space if space > start else middle


def _extends(child: tuple[str, ...], parent: tuple[str, ...]) -> bool:
    return len(child) > len(parent) and child[: len(parent)] == parent


def embed_header(title: str | None, heading_path: tuple[str, ...]) -> str:
    """What heads a chunk's embedded text: the title and the headings above it, joined by " > "."""
    parts = [p for p in ([title] if title else []) + list(heading_path) if p]
    deduped = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    return " > ".join(deduped)
