"""Keyword index in step with chunks, the three retrieval modes, document grouping, and `searchsvc eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.keyword_index import affordable_terms, query_terms
from searchsvc.storage.schema import Chunk
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    target.mkdir()
    for name in ("redis/README.md", "zstd/README.md", "systemd/UIDS-GIDS.md"):
        (target / name.replace("/", "-")).write_text((SAMPLE_DATA / "markdown" / name).read_text())
    return target


def _search(settings, query: str, **kwargs):  # type: ignore[no-untyped-def]
    provider, store = make_embedding_provider(settings), Store(settings)
    try:
        return search(store, provider, "docs", query, **kwargs).hits
    finally:
        store.close()
        provider.close()


def _fts_rows(settings) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    store = Store(settings)
    try:
        with store.session() as session:
            indexed = (
                "SELECT count(*) FROM chunks WHERE search_vector IS NOT NULL"
                if session.get_bind().dialect.name == "postgresql"
                else "SELECT count(*) FROM chunks_fts"
            )
            return session.scalar(text(indexed)), session.scalar(select(func.count()).select_from(Chunk))
    finally:
        store.close()


def test_keyword_index_follows_inserts_updates_and_deletes(tmp_path, fake_openai: FakeOpenAI, folder: Path) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    fts, chunks = _fts_rows(settings)
    assert fts == chunks > 0
    readme = folder / "zstd-README.md"
    readme.write_text(readme.read_text().replace("__Zstandard__", "__Xylophonestandard__", 1))
    (folder / "redis-README.md").unlink()
    run_ingest(settings, folder, prune=True)
    assert _fts_rows(settings)[0] == _fts_rows(settings)[1]
    hits = _search(settings, "Xylophonestandard", k=3, mode="keyword")
    assert hits and hits[0].document_key == "docs/zstd-README.md" and "Xylophonestandard" in hits[0].text
    assert not _search(settings, "antirez sds", k=3, mode="keyword")  # only the deleted Redis README had these


def test_keyword_mode_finds_exact_identifiers_and_hybrid_reports_both_scores(tmp_path, fake_openai, folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    hits = _search(settings, "SYSTEMD_HOME_UID_MIN", k=2, mode="keyword")
    assert hits[0].document_key == "docs/systemd-UIDS-GIDS.md" and hits[0].keyword_score > 0
    hybrid = _search(settings, "systemd user id ranges", k=5, mode="hybrid")
    assert all(h.vector_score is not None for h in hybrid)
    assert any(h.keyword_score is not None for h in hybrid)
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)


def test_filters_apply_to_both_sides_of_hybrid(tmp_path, fake_openai: FakeOpenAI, folder: Path) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    for mode in ("vector", "keyword", "hybrid"):
        hits = _search(settings, "compression redis systemd", k=5, mode=mode, filter={"key": "docs/redis-README.md"})
        assert hits and {h.document_key for h in hits} == {"docs/redis-README.md"}


def test_group_by_document_returns_each_document_once(tmp_path, fake_openai: FakeOpenAI, folder: Path) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    hits = _search(settings, "compression data structures users", k=3, group_by="document")
    assert len(hits) == 3 and len({h.document_id for h in hits}) == 3


def test_query_terms_drop_stopwords_and_fts_syntax() -> None:
    assert query_terms('what is the "NEAR" OR * (syntax)?') == ["near", "syntax"]
    assert query_terms("the") == ["the"]


def test_eval_command_scores_every_mode_and_reuses_the_collection(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    beir = tmp_path / "tiny"
    beir.mkdir()
    docs = {
        "d1": "Redis persistence with append only files",
        "d2": "Zstandard compression levels",
        "d3": "systemd user and group id ranges",
        "d4": "Python virtual environments with venv",
    }
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "append only file persistence"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "compression levels"})
        + "\n"
    )
    (beir / "qrels_test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    env = cli_env(remote_settings(tmp_path, fake_openai, embedding_model=MODEL), fake_openai)
    command = [sys.executable, "-m", "searchsvc", "eval", str(beir), "--split", "test", "--json"]
    first = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    assert set(first["modes"]) == {"vector", "keyword", "hybrid"}
    for metrics in first["modes"].values():
        assert metrics["ndcg@10"] == 1.0 and metrics["mrr@10"] == 1.0 and metrics["p50_ms"] > 0
    calls = len(fake_openai.embedding_requests())
    subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert len(fake_openai.embedding_requests()) - calls == 2 * 2  # only the queries, twice (vector + hybrid)


def test_common_terms_are_dropped_past_the_postings_budget(tmp_path, fake_openai: FakeOpenAI) -> None:
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(30):
        (docs / f"note-{i}.txt").write_text(f"Note {i}: the harbour report mentions weather and tides.\n")
    (docs / "zebra.txt").write_text("A zebra was seen near the harbour at dawn.\n")
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, keyword_postings_budget=5)
    run_ingest(settings, docs)
    store = Store(settings)
    try:
        with store.session() as session:
            # "harbour" is in 31 chunks, "zebra" in 1: over a budget of 5 postings only the rare term is ranked.
            assert affordable_terms(session, ["harbour", "zebra"], 5) == ["zebra"]
            assert affordable_terms(session, ["harbour", "zebra"], 100) == ["harbour", "zebra"]
            assert affordable_terms(session, ["harbour", "weather"], 5) in (["harbour"], ["weather"])  # one stays
    finally:
        store.close()
    hits = _search(settings, "harbour zebra", k=3, mode="keyword")
    assert hits[0].document_key.endswith("zebra.txt")
