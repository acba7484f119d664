"""Ingest sample_data with the local model, then search it: the expected document comes first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from ingest.sources import discover
from searchsvc.search import search
from searchsvc.store import Store
from tests.conftest import SAMPLE_DATA, cli_env, make_settings

QUERIES = {
    "install pyenv on macOS with Homebrew": "markdown/pyenv/README.md",
    "sort a list of objects using a key function": "html/python-howto/sorting.html",
    "magic rules that detect the MIME type of a file": "pdf/shared-mime-info-spec.pdf",
    "create a virtual environment and install packages with pip": "text/python-tutorial/venv.txt",
    "handle exceptions with try and except clauses": "text/python-tutorial/errors.txt",
    "argparse tutorial: positional and optional arguments": "html/python-howto/argparse.html",
    "Zstandard compression levels and dictionary training": "markdown/zstd/README.md",
}


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory, local_provider):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("e2e"))
    store = Store(settings)
    pipeline = IngestPipeline(store, local_provider, "docs", chunk_tokens=256, chunk_overlap=32)
    report = pipeline.run(discover(SAMPLE_DATA), source="sample_data")
    yield store, report
    store.close()


def test_every_sample_document_is_ingested(sample_store) -> None:
    _, report = sample_store
    files = [p for p in SAMPLE_DATA.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts[-4:])]
    assert report.added == len(files) >= 31
    assert report.skipped == []
    assert report.chunks > 500


@pytest.mark.parametrize("query,expected", QUERIES.items())
def test_expected_document_ranks_first(sample_store, local_provider, query: str, expected: str) -> None:
    store, _ = sample_store
    result = search(store, local_provider, "docs", query, k=5)
    assert result.hits[0].document_key == f"sample_data/{expected}", [h.document_key for h in result.hits]


def test_hits_point_at_exact_places(sample_store, local_provider) -> None:
    store, _ = sample_store
    for hit in search(store, local_provider, "docs", "pyenv global python version", k=10).hits:
        source = Path(hit.path).read_text(encoding="utf-8") if hit.path.endswith((".md", ".txt")) else None
        if source is not None:
            assert source[hit.start_char : hit.end_char] == hit.text
            lines = source.splitlines()
            assert hit.text.splitlines()[0] in lines[hit.line_start - 1]
            assert hit.text.splitlines()[-1] in lines[hit.line_end - 1]


def test_pdf_hits_carry_their_page(sample_store, local_provider) -> None:
    store, _ = sample_store
    hits = search(store, local_provider, "docs", "XML source files for the MIME database", k=20).hits
    pdf_hits = [h for h in hits if h.path.endswith(".pdf")]
    assert pdf_hits and all(h.page is not None and 1 <= h.page <= 17 for h in pdf_hits)


def test_cli_ingest_and_search_print_json(tmp_path: Path) -> None:
    """The installed command, end to end, on a small folder (two files)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pyenv.md").write_text((SAMPLE_DATA / "markdown/pyenv/COMMANDS.md").read_text())
    (folder / "sorting.html").write_text((SAMPLE_DATA / "html/python-howto/sorting.html").read_text())
    env_args = [sys.executable, "-m", "searchsvc", "--data-dir", str(tmp_path / "data")]
    env = cli_env(make_settings(tmp_path))
    ingest = subprocess.run(
        [*env_args, "ingest", str(folder), "--json"], capture_output=True, text=True, check=True, env=env
    )
    report = json.loads(ingest.stdout)
    assert report["added"] == 2 and report["provider"] == "local"
    found = subprocess.run(
        [*env_args, "search", "sorting with a key function", "-k", "2", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(found.stdout)["results"]
    assert results[0]["document_key"] == "docs/sorting.html"
    again = subprocess.run(
        [*env_args, "ingest", str(folder), "--json"], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(again.stdout)["unchanged"] == 2


def _answer(sample_store, local_provider, question: str) -> dict:  # type: ignore[no-untyped-def]
    from searchsvc.answering import Answerer, AskRequest

    store, _ = sample_store
    return (
        Answerer(store, local_provider, None, store.settings)
        .answer(AskRequest(question=question, collection="docs"))
        .as_dict()
    )


@pytest.mark.parametrize(
    "question", ["What is the capital of Mongolia?", "How do I squash my last three commits with git rebase?"]
)
def test_questions_the_documents_cannot_answer_get_i_dont_know(sample_store, local_provider, question: str) -> None:
    reply = _answer(sample_store, local_provider, question)
    assert reply["answered"] is False and reply["answer"].startswith("I don't know") and reply["citations"] == []


def test_extractive_answers_quote_prose_not_headings_or_lead_ins(sample_store, local_provider) -> None:
    for question in (
        "How do I train a compression dictionary with zstd?",
        "How do I install pyenv with Homebrew?",
        "What command creates a new Python virtual environment?",
    ):
        reply = _answer(sample_store, local_provider, question)
        assert reply["answered"] and reply["citations"], question
        sentences = [s.strip() for s in reply["answer"].split(".") if s.strip()]
        headings = {h.lower() for c in reply["citations"] for h in c["heading_path"]}
        for sentence in sentences:
            text = sentence.rsplit("[", 1)[0].strip()
            assert not text.endswith(":") and text.lower() not in headings, (question, text)


def test_html_citations_give_heading_path_and_character_offsets(sample_store, local_provider) -> None:
    reply = _answer(sample_store, local_provider, "When two items have equal sort keys, does Python keep their order?")
    html = [c for c in reply["citations"] if c["path"].endswith(".html")]
    assert html, reply["citations"]
    for citation in html:
        assert citation["line_start"] is None and "None" not in citation["location"]
        assert f"characters {citation['start_char']}-{citation['end_char']}" in citation["location"]
        assert " > ".join(citation["heading_path"]) in citation["location"]


def test_candidate_sentences_leave_out_headings_lead_ins_and_code() -> None:
    from searchsvc.answering.extractive import candidate_sentences

    chunk = (
        "## Installing pyenv\n\nTo install it with Homebrew, run the following:\n\n"
        "```sh\nbrew install pyenv\n```\n\nThe shims directory must come first on your PATH.\n"
    )
    assert candidate_sentences(chunk, ["Installing pyenv"]) == ["The shims directory must come first on your PATH."]
    assert candidate_sentences(
        "Installing pyenv with care\n\nMore text follows here now.", ["Installing pyenv with care"]
    ) == ["More text follows here now."]


def test_search_hits_carry_a_location_to_follow(sample_store, local_provider) -> None:
    store, _ = sample_store
    hits = search(store, local_provider, "docs", "sort with a key function", k=10).hits
    html = next(h for h in hits if h.path.endswith(".html"))
    assert html.as_dict()["location"].endswith(f"characters {html.start_char}-{html.end_char}")
    hits = search(store, local_provider, "docs", "create a virtual environment with venv", k=10).hits
    text = next(h for h in hits if h.line_start is not None)
    assert text.as_dict()["location"].endswith(f"lines {text.line_start}-{text.line_end}")
