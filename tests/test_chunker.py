"""Chunks are token-bounded, exact spans of the text, split at structure first."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from ingest.chunker import Chunker
from ingest.parsers import format_for, parse_bytes
from ingest.parsers.markdown import parse_markdown
from ingest.parsers.text import parse_text
from searchsvc.providers.token_counting import TiktokenCounter, WordPieceCounter
from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="module")
def wordpiece(local_provider) -> WordPieceCounter:  # type: ignore[no-untyped-def]
    return local_provider.tokenizer


def test_no_chunk_exceeds_the_limit_on_any_sample_file(wordpiece) -> None:
    chunker = Chunker(wordpiece, max_tokens=254, overlap=32)
    for path in sorted(SAMPLE_DATA.rglob("*.*")):
        fmt = format_for(path)
        if fmt is None or ".licenses" in path.parts:
            continue
        doc = parse_bytes(path.read_bytes(), fmt)
        for chunk in chunker.chunk(doc, title=path.name):
            assert chunk.token_count <= 254, path
            assert wordpiece.count([chunk.embed_text])[0] == chunk.token_count
            assert doc.text[chunk.start : chunk.end] == chunk.text


def test_one_endless_line_is_cut_at_token_boundaries(wordpiece) -> None:
    text = " ".join(f"word{i}" for i in range(3000))  # no punctuation, no newline
    chunks = Chunker(wordpiece, max_tokens=100, overlap=0).chunk(parse_text(text))
    assert len(chunks) > 10
    assert all(c.token_count <= 100 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_long_sections_overlap_by_whole_sentences(wordpiece) -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7}." for i in range(80)]
    doc = parse_markdown("# Title\n\n" + " ".join(sentences) + "\n")
    chunks = Chunker(wordpiece, max_tokens=120, overlap=30).chunk(doc)
    assert len(chunks) >= 3
    for first, second in pairwise(chunks):
        assert second.start < first.end  # overlapping spans
        assert first.text.endswith(".") and second.text.startswith("Sentence")


def test_chunks_stay_inside_their_section_and_record_lines(wordpiece) -> None:
    doc = parse_markdown("# A\n\nalpha text.\n\n## B\n\nbeta text.\n\n## C\n\ngamma text.\n")
    chunks = Chunker(wordpiece, max_tokens=200, overlap=20).chunk(doc)
    assert [(c.heading_path, c.line_start, c.line_end) for c in chunks] == [
        (("A",), 1, 3),
        (("A", "B"), 5, 7),
        (("A", "C"), 9, 11),
    ]
    assert chunks[1].embed_text.startswith("A > B\n")


def test_tiktoken_counts_bound_chunks_for_openai_models(tmp_path: Path) -> None:
    counter = TiktokenCounter()
    text = (SAMPLE_DATA / "markdown/pyenv/README.md").read_text()
    chunks = Chunker(counter, max_tokens=300, overlap=30).chunk(parse_markdown(text))
    assert chunks and all(counter.count([c.embed_text])[0] <= 300 for c in chunks)


def test_wordpiece_counts_without_special_tokens(wordpiece) -> None:
    assert wordpiece.count(["hello world"]) == [2]
