"""Markdown: paragraphs, fenced code and the heading hierarchy (ATX and setext).

Lines of the parsed text are lines of the file, so chunks get exact line ranges.
"""

from __future__ import annotations

import re

from ingest.document import Block, ParsedDocument
from ingest.parsers.lines import HeadingStack, Line, split_lines

ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
INLINE_MARKUP = re.compile(r"[*_`]|\[([^\]]*)\]\([^)]*\)")


def clean_heading(raw: str) -> str:
    """Heading text without emphasis markers or link targets."""
    return INLINE_MARKUP.sub(lambda m: m.group(1) or "", raw).strip()


class _MarkdownBlocks:
    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.blocks: list[Block] = []
        self.headings = HeadingStack()
        self.title: str | None = None
        self.para: list[Line] = []

    def flush(self) -> None:
        if self.para:
            self.blocks.append(Block(self.para[0].start, self.para[-1].end, self.headings.path))
            self.para = []

    def heading(self, level: int, text: str, start: int, end: int) -> None:
        self.flush()
        title = clean_heading(text)
        if not title:
            return
        if self.title is None:
            self.title = title  # the first heading names the document
        path = self.headings.push(level, title)
        self.blocks.append(Block(start, end, path, kind="heading"))

    def run(self) -> None:
        index = _skip_front_matter(self.lines)
        while index < len(self.lines):
            index = self.step(index)
        self.flush()

    def step(self, index: int) -> int:
        line = self.lines[index]
        fence = FENCE.match(line.text)
        if fence:
            return self.code_block(index, fence.group(1))
        atx = ATX.match(line.text)
        if atx:
            self.heading(len(atx.group(1)), atx.group(2) or "", line.start, line.end)
            return index + 1
        setext = SETEXT.match(line.text)
        if setext and len(self.para) == 1:
            first = self.para.pop()
            self.heading(1 if setext.group(1)[0] == "=" else 2, first.text, first.start, line.end)
            return index + 1
        if line.blank:
            self.flush()
        else:
            self.para.append(line)
        return index + 1

    def code_block(self, index: int, marker: str) -> int:
        self.flush()
        start = self.lines[index].start
        end_index = index + 1
        while end_index < len(self.lines):
            if self.lines[end_index].text.strip().startswith(marker[0] * len(marker)):
                break
            end_index += 1
        last = self.lines[min(end_index, len(self.lines) - 1)]
        self.blocks.append(Block(start, last.end, self.headings.path, kind="code"))
        return end_index + 1


def _skip_front_matter(lines: list[Line]) -> int:
    """Index of the first line after a YAML front-matter block, or 0 when there is none."""
    if not lines or lines[0].text.strip() != "---":
        return 0
    for index in range(1, min(len(lines), 200)):
        if lines[index].text.strip() in ("---", "..."):
            return index + 1
    return 0


def parse_markdown(text: str) -> ParsedDocument:
    builder = _MarkdownBlocks(split_lines(text))
    builder.run()
    return ParsedDocument(text=text, title=builder.title, blocks=builder.blocks)
