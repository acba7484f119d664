"""What parsers produce and the pipeline consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ParseError(Exception):
    """A file could not be parsed; the pipeline reports it and moves on."""


class SourceUnavailable(ParseError):
    """The file could not be read this time (I/O error, gone, grown past the limit): nothing about its
    content is known, so what is indexed of it stays and the next run tries again."""


@dataclass(frozen=True)
class Block:
    """A structural unit of a document: a paragraph, heading, code block or page.

    ``start``/``end`` are character offsets into ``ParsedDocument.text``.
    """

    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    kind: str = "text"  # "text", "heading" or "code"


@dataclass
class ParsedDocument:
    """Plain text with the blocks that structure it.

    ``line_numbers`` says whether lines of ``text`` are lines of the source file
    (true for Markdown and plain text; HTML and PDF locate by heading or page).
    """

    text: str
    title: str | None
    blocks: list[Block]
    line_numbers: bool = True


@dataclass
class SourceDocument:
    """A document found by a source, parsed only when it must be (re)embedded."""

    key: str
    source: str
    path: str | None
    content_hash: str
    load: Callable[[], ParsedDocument]
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    movable: bool = False  # a file in a folder: found under another name later, it is the same document


@dataclass(frozen=True)
class SkippedDocument:
    """A file or record that was not ingested, and why."""

    path: str
    reason: str
