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
