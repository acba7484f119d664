"""Automatic index type: exact (flat) while a collection is small, HNSW once it is large, and back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from searchsvc.doctor import check_collection
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.index_policy import FILTERED_EF_MAX, IndexPolicy, filtered_ef_search
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

QUERIES = ("redis persistence", "compression levels", "how to install", "configuration file syntax")


@pytest.mark.parametrize(
    ("requested", "count", "current", "expected"),
    [
        ("auto", 0, None, "flat"),
        ("auto", 99, "flat", "flat"),
        ("auto", 100, "flat", "hnsw"),
        ("auto", 60, "hnsw", "hnsw"),  # shrinking a little keeps the graph
        ("auto", 49, "hnsw", "flat"),  # below half the limit: exact again
        ("flat", 10**6, "flat", "flat"),
        ("hnsw", 1, "hnsw", "hnsw"),
    ],
)
def test_policy_picks_the_type_by_size(requested: str, count: int, current: str | None, expected: str) -> None:
    assert IndexPolicy(hnsw_min_chunks=100).resolve(requested, count, current) == expected


@pytest.mark.parametrize(
    ("allowed", "total", "expected"),
    [
        (1_000_000, 1_000_000, 128),  # everything allowed: the usual breadth
        (500_000, 1_000_000, 256),  # half: twice as wide, to meet as many allowed vectors
        (250_000, 1_000_000, 512),
        (50_000, 1_000_000, FILTERED_EF_MAX),  # 5%: 2,560 wanted, capped at pgvector's maximum
        (10, 0, 128),  # no count known yet
    ],
)
def test_filtered_walks_widen_by_the_filters_selectivity(allowed: int, total: int, expected: int) -> None:
    assert filtered_ef_search(128, allowed, total) == expected
    assert filtered_ef_search(2000, 50_000, 1_000_000) == 2000  # a configured breadth above the cap is kept


def _results(settings, collection: str) -> list[list[tuple[float, str, str]]]:  # type: ignore[no-untyped-def]
    """Each query's hits as (score, document, text), best first; equal scores (the fake embedder makes
    exact ties) in a fixed order, since flat and HNSW sum in different orders and may break them apart."""
    provider, store = make_embedding_provider(settings), Store(settings)
    try:
        return [
            sorted(
                (
                    (round(h.score, 5), h.document_key, h.text)
                    for h in search(store, provider, collection, q, k=10, mode="vector").hits
                ),
                key=lambda hit: (-hit[0], hit[1], hit[2]),
            )
            for q in QUERIES
        ]
    finally:
        store.close()
        provider.close()


def _index_type(settings, collection: str) -> str:  # type: ignore[no-untyped-def]
    store = Store(settings)
    try:
        index_type = store.index_type_in_use(collection)
    finally:
        store.close()
    assert index_type is not None
    return index_type


def _healthy(settings, collection: str) -> None:  # type: ignore[no-untyped-def]
    store = Store(settings)
    try:
        health = check_collection(store, store.get_collection(collection))
        assert health.problems == [], health.problems
    finally:
        store.close()


def test_auto_collections_switch_to_hnsw_when_large_and_back_when_small(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE_DATA / "markdown", folder)
    exact = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, index_type="flat")
    report = run_ingest(exact, folder, collection="exact")
    chunks = report.chunks
    assert chunks >= 40, "the sample Markdown should make enough chunks for this test"

    auto = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, hnsw_min_chunks=chunks // 2)
    server = Store(auto.model_copy(update={"index_refresh_seconds": 0.0}))  # a running server's view
    try:
        run_ingest(auto, folder, collection="auto")
        assert _index_type(auto, "auto") == "hnsw"
        assert _index_type(exact, "exact") == "flat"  # an explicit choice is kept whatever the size
        assert server.index(server.get_collection("auto")).manifest.index_type == "hnsw"
        # HNSW over a few hundred vectors with ef_search 128 finds the exact neighbours.
        assert _results(auto, "auto") == _results(exact, "exact")
        _healthy(auto, "auto")

        for readme in sorted(folder.rglob("*.md"))[: len(list(folder.rglob("*.md"))) - 1]:
            readme.unlink()
        shrunk = run_ingest(auto, folder, collection="auto", prune=True)
        assert shrunk.removed > 0
        assert _index_type(auto, "auto") == "flat"
        server_index = server.index(server.get_collection("auto"))
        assert server_index.manifest.index_type == "flat" and server_index.count() < chunks // 4
        _healthy(auto, "auto")
    finally:
        server.close()


@pytest.fixture
def large_auto_collection_without_index(tmp_path: Path, fake_openai: FakeOpenAI):  # type: ignore[no-untyped-def]
    """An auto collection past its (lowered) HNSW line, whose index files are gone."""
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, hnsw_min_chunks=10)
    run_ingest(settings, SAMPLE_DATA / "markdown")
    store = Store(settings)
    store.drop_index("docs")
    store.close()
    return settings


def test_reindex_builds_the_type_the_size_calls_for(large_auto_collection_without_index) -> None:
    settings = large_auto_collection_without_index
    store = Store(settings)
    try:
        index = store.rebuild_index(store.get_collection("docs"))
        assert index.manifest.index_type == "hnsw" and index.count() >= 10
    finally:
        store.close()
    _healthy(settings, "docs")


def test_a_lost_index_is_rebuilt_as_the_type_its_size_calls_for(large_auto_collection_without_index) -> None:
    store = Store(large_auto_collection_without_index)
    try:
        assert store.index(store.get_collection("docs")).manifest.index_type == "hnsw"
        assert store.index_type_in_use("docs") == "hnsw"
    finally:
        store.close()
