"""The numbered sources of an answer, and how they are shown to a chat model: as delimited data."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from searchsvc.locations import describe_location
from searchsvc.search import SearchHit

SOURCE_TAG = re.compile(r"<\s*/?\s*source\b", re.IGNORECASE)  # a document must not open or close a block


@dataclass
class AnswerSource:
    number: int
    chunk_id: int
    document_id: int
    document_key: str
    title: str | None
    path: str | None
    heading_path: list[str]
    line_start: int | None
    line_end: int | None
    page: int | None
    start_char: int
    end_char: int
    score: float
    vector_score: float | None
    text: str

    @classmethod
    def from_hit(cls, number: int, hit: SearchHit) -> AnswerSource:
        return cls(
            number=number,
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            document_key=hit.document_key,
            title=hit.title,
            path=hit.path,
            heading_path=hit.heading_path,
            line_start=hit.line_start,
            line_end=hit.line_end,
            page=hit.page,
            start_char=hit.start_char,
            end_char=hit.end_char,
            score=hit.score,
            vector_score=hit.vector_score,
            text=hit.text,
        )

    def location(self) -> str:
        return describe_location(
            self.path or self.document_key,
            self.heading_path,
            self.page,
            self.line_start,
            self.line_end,
            self.start_char,
            self.end_char,
            separator=", ",
        )


def source_block(source: AnswerSource) -> str:
    """A source as delimited data; its text cannot close the block early."""
    body = SOURCE_TAG.sub(lambda m: "&lt;" + m.group(0)[1:], source.text)
    title = html.escape(source.title or "", quote=True)
    location = html.escape(source.location(), quote=True)
    return f'<source id="{source.number}" title="{title}" location="{location}">\n{body}\n</source>'
