"""HTML: the visible text, its title and heading hierarchy; navigation and scripts dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ingest.document import Block, ParsedDocument
from ingest.parsers.lines import HeadingStack

INVISIBLE = {"script", "style", "noscript", "template", "head", "svg", "nav", "header", "footer", "aside", "form"}
SKIP_ROLES = {"navigation", "banner", "contentinfo", "search"}
SKIP_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer", "sidebar", "navbar", "breadcrumb", "toc"}
BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "td",
    "th",
    "blockquote",
    "pre",
    "br",
    "hr",
    "figure",
    "figcaption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "body",
}
VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "track", "wbr"}
HEADINGS = {f"h{i}": i for i in range(1, 7)}
SPACES = re.compile(r"\s+")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.blocks: list[Block] = []
        self.block_start = 0
        self.headings = HeadingStack()
        self.skip: list[str] = []  # tags whose content is being skipped (a stack of one name)
        self.skip_depth = 0
        self.pre_depth = 0
        self.heading_level: int | None = None
        self.heading_text: list[str] = []
        self.in_title = False
        self.title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag == self.skip[0] and tag not in VOID_TAGS:
                self.skip_depth += 1
            return
        if tag == "title":
            self.in_title = True
            return
        if tag in INVISIBLE - {"head"} or _hidden_by_attrs(attrs):
            if tag not in VOID_TAGS:
                self.skip, self.skip_depth = [tag], 1
            return
        if tag in BLOCK_TAGS:
            self.end_block()
        if tag == "pre":
            self.pre_depth += 1
        if tag in HEADINGS:
            self.heading_level, self.heading_text = HEADINGS[tag], []

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[0]:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip = []
            return
        if tag == "title":
            self.in_title = False
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in HEADINGS and self.heading_level is not None:
            title = SPACES.sub(" ", "".join(self.heading_text)).strip()
            self.heading_level = None
            if title:
                self.headings.push(HEADINGS[tag], title)
                self.end_block(kind="heading")
                return
        if tag in BLOCK_TAGS:
            self.end_block()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip:
            return
        if not self.pre_depth:
            data = SPACES.sub(" ", data)
            if self.length == self.block_start or (self.parts and self.parts[-1].endswith(" ")):
                data = data.lstrip()
        if not data:
            return
        if self.heading_level is not None:
            self.heading_text.append(data)
        self.parts.append(data)
        self.length += len(data)

    def end_block(self, kind: str = "text") -> None:
        text = "".join(self.parts)[self.block_start :] if self.length > self.block_start else ""
        if text.strip():
            stripped_end = self.block_start + len(text.rstrip())
            self.blocks.append(Block(self.block_start, stripped_end, self.headings.path, kind=kind))
            self.parts.append("\n\n")
            self.length += 2
        elif self.length > self.block_start:
            # whitespace-only: drop it so blocks stay separated by exactly one blank line
            self.parts = ["".join(self.parts)[: self.block_start]]
            self.length = self.block_start
        self.block_start = self.length


def _hidden_by_attrs(attrs: list[tuple[str, str | None]]) -> bool:
    values = {name: (value or "") for name, value in attrs}
    if "hidden" in values or values.get("aria-hidden") == "true":
        return True
    if values.get("role", "").lower() in SKIP_ROLES:
        return True
    return bool(SKIP_CLASSES.intersection(values.get("class", "").split()))


def parse_html(text: str) -> ParsedDocument:
    parser = _VisibleText()
    parser.feed(text)
    parser.close()
    parser.end_block()
    body = "".join(parser.parts)
    title = SPACES.sub(" ", "".join(parser.title_parts)).strip() or None
    first_h1 = next((b.heading_path[0] for b in parser.blocks if b.kind == "heading"), None)
    return ParsedDocument(text=body, title=title or first_h1, blocks=parser.blocks, line_numbers=False)
