"""One parser per format; each turns raw content into a ParsedDocument."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingest.document import ParsedDocument
from ingest.parsers.html import parse_html
from ingest.parsers.markdown import parse_markdown
from ingest.parsers.pdf import parse_pdf
from ingest.parsers.text import decode_text, parse_text
from searchsvc.textclean import clean_text

TEXT_PARSERS: dict[str, Callable[[str], ParsedDocument]] = {
    "markdown": parse_markdown,
    "text": parse_text,
    "html": parse_html,
}

FORMAT_BY_SUFFIX = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


def format_for(path: Path) -> str | None:
    """The parser name for a file, by suffix, or None when unsupported."""
    return FORMAT_BY_SUFFIX.get(path.suffix.lower())


def parse_bytes(data: bytes, fmt: str) -> ParsedDocument:
    """Parse file content of a known format; raises ParseError when it cannot."""
    if fmt == "pdf":
        return parse_pdf(data)
    return TEXT_PARSERS[fmt](clean_text(decode_text(data)))
