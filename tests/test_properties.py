"""Property-based tests (hypothesis) for the chunker and the parsers: any Unicode, no crash,
offsets always point at the chunk's text, nothing lost, nothing duplicated beyond the overlap."""

from __future__ import annotations

import contextlib
import os
import time
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.chunker import Chunker
from ingest.parsers import parse_bytes
from ingest.parsers.html import parse_html
from ingest.parsers.markdown import parse_markdown
from ingest.parsers.text import parse_text
from ingest.sources import record_document
from searchsvc.providers.token_counting import TiktokenCounter

MAX_TOKENS, OVERLAP = 40, 8

# Any code point, lone surrogates included; plus pieces that stress structure.
anything = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=600)
structured = st.lists(
    st.sampled_from(
        [
            "# Title\n",
            "## Sub\n",
            "Setext\n======\n",
            "```\ncode # not heading\n```\n",
            "\n\n",
            "- item\n",
            "Plain sentence here. ",
            "שלום עולם. ",
            "مرحبا بالعالم. ",
            "😀🚀✨ ",
            "\x00",
            "\ud800",
            "\u200f",
            "a" * 300,
            "<p>para</p>",
            "<script>x</script>",
            "<h2>H</h2>",
            "&amp;",
            "\t",
            "\r\n",
        ]
    ),
    max_size=40,
).map("".join)
texts = st.one_of(anything, structured)
# Random exploration on developers' machines; the same examples on every CI run (a CI failure is then a
# reproducible bug, not luck).
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("SEARCHSVC_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI", "").lower() == "true",
)


@pytest.fixture(scope="module")
def counters(local_provider):  # type: ignore[no-untyped-def]
    return [local_provider.tokenizer, TiktokenCounter()]


def _check(doc, counter) -> None:  # type: ignore[no-untyped-def]
    chunks = Chunker(counter, MAX_TOKENS, OVERLAP).chunk(doc, title="T")
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.token_count <= MAX_TOKENS
        assert counter.count([chunk.embed_text])[0] == chunk.token_count
    covered = [False] * len(doc.text)
    for chunk in chunks:
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    for block in doc.blocks:  # no visible character of any block is lost
        lost = [i for i in range(block.start, block.end) if not covered[i] and not doc.text[i].isspace()]
        assert not lost, (block, [doc.text[i] for i in lost[:5]])
    for first, second in pairwise(chunks):  # duplication bounded by the overlap
        if second.start < first.end:
            shared = doc.text[second.start : first.end]
            assert counter.count([shared])[0] <= OVERLAP + 2, shared


@PROPERTY_SETTINGS
@given(text=texts)
@example(text="0:0:0:0:0:0:0:0:0:0ØØ0ØØ. 0000\r```0\n0:0\n0\n0:")  # overlap counted per unit, not as joined
def test_markdown_and_text_chunks_keep_every_character_exactly_once_or_in_overlap(counters, text: str) -> None:
    record = record_document("id", text, None, {}, "src", None)  # cleans what stores and tokenizers reject
    for parse in (parse_markdown, parse_text):
        doc = parse(record.load().text)
        for counter in counters:
            _check(doc, counter)


@PROPERTY_SETTINGS
@given(text=texts)
def test_html_parser_never_crashes_and_chunks_are_exact(counters, text: str) -> None:
    doc = parse_html(record_document("id", text, None, {}, "src", None).load().text)
    _check(doc, counters[0])


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_a_parse_error(data: bytes) -> None:
    from ingest.document import ParseError

    for fmt in ("markdown", "text", "html", "pdf"):
        with contextlib.suppress(ParseError):  # the only failure allowed
            parse_bytes(data, fmt)


def test_a_10mb_single_line_is_chunked_without_crashing(counters) -> None:
    line = ("word " * 2_000_000)[:10_000_000]
    started = time.monotonic()
    doc = parse_text(line)
    chunks = Chunker(counters[0], 254, 32).chunk(doc)
    assert sum(1 for _ in chunks) > 1000 and all(c.token_count <= 254 for c in chunks)
    assert time.monotonic() - started < 300
