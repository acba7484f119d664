"""PDF: text per page (pypdf), so every chunk knows its page."""

from __future__ import annotations

import io
import logging
import re

from ingest.document import Block, ParsedDocument, ParseError
from searchsvc.textclean import clean_text

BLANK_LINES = re.compile(r"\n\s*\n")


def parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ParseError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise ParseError(f"unreadable PDF: {exc}") from exc
    text_parts: list[str] = []
    blocks: list[Block] = []
    offset = 0
    for number, page_text in enumerate(pages, start=1):
        page_text = clean_text(page_text).strip()
        start = offset
        for para in _paragraph_spans(page_text):
            blocks.append(Block(start + para[0], start + para[1], (), page=number))
        text_parts.append(page_text + "\n\n")
        offset += len(page_text) + 2
    text = "".join(text_parts)
    return ParsedDocument(text=text, title=str(title).strip() if title else None, blocks=blocks, line_numbers=False)


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for match in BLANK_LINES.finditer(text):
        if text[pos : match.start()].strip():
            spans.append((pos, match.start()))
        pos = match.end()
    if text[pos:].strip():
        spans.append((pos, len(text)))
    return spans
