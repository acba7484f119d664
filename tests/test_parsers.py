"""Parsers keep structure: headings, lines, pages, visible text only."""

from __future__ import annotations

import pytest

from ingest.document import ParseError
from ingest.parsers import parse_bytes
from ingest.parsers.html import parse_html
from ingest.parsers.markdown import parse_markdown
from ingest.parsers.text import decode_text, parse_text
from tests.conftest import SAMPLE_DATA

MARKDOWN = """---
title: ignored front matter
---
# Guide

Intro paragraph.

## Install *fast*

```bash
# not a heading
pip install thing
```

Setext section
--------------

Body under setext.

### Deep

Deep text.

## Other

Other text.
"""


def test_markdown_keeps_the_heading_hierarchy_per_block() -> None:
    doc = parse_markdown(MARKDOWN)
    by_text = {doc.text[b.start : b.end].splitlines()[0]: b for b in doc.blocks}
    assert doc.title == "Guide"
    assert by_text["Intro paragraph."].heading_path == ("Guide",)
    code = by_text["```bash"]
    assert code.kind == "code" and code.heading_path == ("Guide", "Install fast")
    assert by_text["Body under setext."].heading_path == ("Guide", "Setext section")
    assert by_text["Deep text."].heading_path == ("Guide", "Setext section", "Deep")
    assert by_text["Other text."].heading_path == ("Guide", "Other")
    assert not any("ignored front matter" in doc.text[b.start : b.end] for b in doc.blocks)


def test_plain_text_understands_underlined_headings() -> None:
    text = "Title\n=====\n\nIntro.\n\nPart one\n--------\n\nBody one.\n\nPart two\n--------\n\nBody two.\n"
    doc = parse_text(text)
    paths = [b.heading_path for b in doc.blocks if b.kind == "text"]
    assert paths == [("Title",), ("Title", "Part one"), ("Title", "Part two")]


def test_html_keeps_visible_text_title_and_headings_only() -> None:
    html = """<html><head><title>The Title</title><style>p {color: red}</style></head>
    <body><nav>Home | About</nav><script>var hidden = 1;</script>
    <h1>Main<a class="headerlink" href="#">¶</a></h1><p>First   paragraph
    text.</p><div role="navigation">sidebar links</div><h2>Sub</h2><p>Second &amp; last.</p>
    <footer>copyright</footer></body></html>"""
    doc = parse_html(html)
    assert doc.title == "The Title"
    assert "First paragraph text." in doc.text and "Second & last." in doc.text
    for invisible in ("Home", "hidden", "sidebar", "copyright", "color", "¶"):
        assert invisible not in doc.text
    second = next(b for b in doc.blocks if "Second" in doc.text[b.start : b.end])
    assert second.heading_path == ("Main", "Sub")


def test_pdf_blocks_carry_page_numbers() -> None:
    doc = parse_bytes((SAMPLE_DATA / "pdf/shared-mime-info-spec.pdf").read_bytes(), "pdf")
    pages = {b.page for b in doc.blocks}
    assert pages == set(range(1, 18))
    assert "MIME" in doc.text


def test_broken_pdf_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_bytes(b"%PDF-1.4 this is not really a pdf", "pdf")


def test_binary_content_is_refused_and_latin1_is_read() -> None:
    with pytest.raises(ParseError, match="binary"):
        decode_text(bytes(range(256)) * 4)  # 4 NUL bytes in 1 KiB: binary
    assert decode_text(b"text with one \x00 stray NUL") == "text with one \x00 stray NUL"  # cleaned later
    assert decode_text("café".encode("latin-1")) == "café"
    assert decode_text("\ufeffbom".encode()) == "bom"
