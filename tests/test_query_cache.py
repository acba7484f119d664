"""Repeated queries are not paid again (issue 18, part 7): an in-process LRU per model, and for API models
query vectors kept in SQL for every process, against the fake API, which records every request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.query_cache import query_hash
from searchsvc.search import search
from searchsvc.storage.schema import QueryEmbedding
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.ingest_lead


def _query_requests(fake: FakeOpenAI, query: str) -> int:
    return sum(1 for r in fake.embedding_requests() if r.body.get("input") == [query])


def _search(settings: Settings, queries: list[str]) -> dict[str, int]:
    """Search each query in one 'process' (a store and a registry of its own); its cache counts."""
    store = Store(settings)
    embedders = EmbedderRegistry(settings, store.query_shelf(settings.query_cache_rows))
    try:
        provider = embedders.for_collection(store.get_collection("docs"))
        for query in queries:
            assert search(store, provider, "docs", query, k=3, mode="vector").hits
        counts = embedders.query_cache_counts()[MODEL]
        return {"memory": counts.memory_hits, "sql": counts.shelf_hits, "embedded": counts.misses}
    finally:
        embedders.close()
        store.close()


@pytest.fixture
def settings(tmp_path: Path, fake_openai: FakeOpenAI) -> Settings:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
    return settings


def test_a_repeated_query_is_embedded_once_and_another_process_finds_it_in_sql(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    assert _search(settings, ["install python", "install python", "pyenv shims"]) == {
        "memory": 1,
        "sql": 0,
        "embedded": 2,
    }
    assert _query_requests(fake_openai, "install python") == 1

    # A second process on the same database: nothing in its memory, both vectors in SQL.
    assert _search(settings, ["install python", "pyenv shims", "install python"]) == {
        "memory": 1,
        "sql": 2,
        "embedded": 0,
    }
    assert _query_requests(fake_openai, "install python") == 1 and _query_requests(fake_openai, "pyenv shims") == 1


def test_the_cached_vector_is_the_one_the_api_gave_and_a_caller_cannot_spoil_it(settings: Settings) -> None:
    store = Store(settings)
    embedders = EmbedderRegistry(settings, store.query_shelf(settings.query_cache_rows))
    try:
        provider = embedders.for_collection(store.get_collection("docs"))
        first = provider.embed_query("virtualenv")
        first *= 0  # a caller normalising in place must not change what the next caller gets
        again = provider.embed_query("virtualenv")
        assert np.isclose(np.linalg.norm(again), 1.0)
    finally:
        embedders.close()
    with store.session() as session:
        row = session.get(QueryEmbedding, (MODEL, query_hash("virtualenv")))
        assert row is not None and np.allclose(np.frombuffer(row.vector, dtype=np.float32), again)
    store.close()


def test_with_the_cache_off_every_query_is_embedded_and_nothing_is_kept(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, query_cache_size=0, query_cache_rows=0)
    run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
    assert _search(settings, ["install python"] * 3) == {"memory": 0, "sql": 0, "embedded": 3}
    assert _query_requests(fake_openai, "install python") == 3
    store = Store(settings)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(QueryEmbedding)) == 0
    store.close()


def test_the_sql_shelf_keeps_its_newest_rows(settings: Settings) -> None:
    store = Store(settings)
    shelf = store.query_shelf(3)
    assert shelf is not None
    shelf.trim_every = 1
    try:
        for n in range(6):
            shelf.put("m", f"h{n}", np.full(4, n, dtype=np.float32))
            shelf.close()  # written now (the writer thread starts again on the next put)
        with store.session() as session:
            kept = set(session.scalars(select(QueryEmbedding.text_hash).where(QueryEmbedding.model == "m")))
        assert kept == {"h3", "h4", "h5"}
        assert shelf.get("m", "h5") is not None and shelf.get("m", "h0") is None
    finally:
        store.close()


def test_local_model_queries_stay_in_memory_and_metrics_count_each_source(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, collection="docs")
    run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert client.post("/v1/search", json={"query": "pyenv install", "k": 2}).status_code == 200
        metrics = client.get("/metrics").text
    assert 'searchsvc_query_embeddings_total{model="all-MiniLM-L6-v2",source="memory"} 2.0' in metrics
    assert 'searchsvc_query_embeddings_total{model="all-MiniLM-L6-v2",source="embedded"} 1.0' in metrics
    store = Store(settings)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(QueryEmbedding)) == 0  # a local query costs nothing
    store.close()


def test_a_background_writer_that_cannot_write_says_so_once_a_minute_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from searchsvc.storage.background import BackgroundWriter

    def refuse(rows: list[int]) -> None:
        raise RuntimeError("cannot execute INSERT in a read-only transaction")

    writer: BackgroundWriter[int] = BackgroundWriter(refuse, "test-writer")
    for n in range(3):
        writer.put(n)
        writer.close()  # each row written (and refused) now
    assert writer.dropped == 3
    assert [r.getMessage() for r in caplog.records if "test-writer" in r.getMessage()] == [
        "test-writer: rows not written (1 in all so far; the next minute's failures are not logged)"
    ]
