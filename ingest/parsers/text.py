"""Plain text: paragraphs split at blank lines, and reStructuredText-style underlined headings."""

from __future__ import annotations

import codecs
import re

from ingest.document import Block, ParsedDocument, ParseError
from ingest.parsers.lines import HeadingStack, Line, split_lines

ADORNMENT = re.compile(r"^([=\-~^*#\"'`:.+_])\1{2,}\s*$")


SNIFF_BYTES = 8192


def looks_binary(head: bytes) -> bool:
    """Binary when the first bytes hold several NULs (more than one, and more than 1 in 1,000 bytes):
    a stray NUL in text is cleaned, not refused. UTF-16 text with a byte order mark is text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = head[:SNIFF_BYTES]
    return sample.count(b"\x00") > max(1, len(sample) // 1000)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Latin-1 for legacy files; mostly-NUL means binary."""
    if looks_binary(data[:SNIFF_BYTES]):
        raise ParseError("binary content (NUL bytes), not text")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(f"invalid UTF-16 text: {exc.reason}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f")
        if controls > len(text[:8192]) * 0.01:
            raise ParseError("binary content (not UTF-8 text)") from None
        return text


def parse_text(text: str) -> ParsedDocument:
    lines = split_lines(text)
    blocks: list[Block] = []
    headings = HeadingStack()
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use = heading levels
    title: str | None = None
    para: list[Line] = []

    def flush() -> None:
        if para:
            blocks.append(Block(para[0].start, para[-1].end, headings.path))
            para.clear()

    index = 0
    while index < len(lines):
        heading = _underlined_heading(lines, index)
        if heading is not None:
            flush()
            style, text_line, first, last = heading
            if style not in styles:
                styles.append(style)
            path = headings.push(styles.index(style) + 1, text_line.text.strip())
            title = title or text_line.text.strip()
            blocks.append(Block(lines[first].start, lines[last].end, path, kind="heading"))
            index = last + 1
        elif lines[index].blank:
            flush()
            index += 1
        else:
            para.append(lines[index])
            index += 1
    flush()
    return ParsedDocument(text=text, title=title, blocks=blocks)


def _underlined_heading(lines: list[Line], index: int) -> tuple[tuple[str, bool], Line, int, int] | None:
    """A heading starting at ``index``: (style, title line, first line, last line), or None."""
    overlined = ADORNMENT.match(lines[index].text)
    text_index = index + 1 if overlined else index
    under_index = text_index + 1
    if under_index >= len(lines) or lines[text_index].blank:
        return None
    if index > 0 and not lines[index - 1].blank and not overlined:
        return None  # a heading starts a paragraph
    title_text = lines[text_index].text.strip()
    under = ADORNMENT.match(lines[under_index].text)
    if not under or len(lines[under_index].text.strip()) < len(title_text) or ADORNMENT.match(title_text):
        return None
    char = under.group(1)
    if overlined and overlined.group(1) != char:
        return None
    return (char, bool(overlined)), lines[text_index], index, under_index
