"""The relevance floor of answers, calibrated per collection and model (issue 19, item 6): measured from
the collection's own scores for unrelated questions, kept in its row, measured again when it no longer
describes the collection."""

from __future__ import annotations

import logging
import shutil
import statistics
from pathlib import Path

import pytest

from searchsvc import relevance_floor
from searchsvc.answering import Answerer, AskRequest
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.prompts import collection_vectors_key
from searchsvc.relevance_floor import FRACTION, MIN_CHUNKS, RelevanceFloors, stale
from searchsvc.storage.schema import Collection
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, make_settings, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault

NONSENSE = "plimsoll quarf vextro dunnage"  # not one of the probes


def _copy(folder: Path, *projects: str) -> Path:
    for project in projects:
        shutil.copytree(SAMPLE_DATA / "markdown" / project, folder / project)
    return folder


def _answer(settings, question: str) -> bool:  # type: ignore[no-untyped-def]
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        embedder = embedders.for_collection(store.get_collection("docs"))
        return (
            Answerer(store, embedder, None, settings).answer(AskRequest(question=question, collection="docs")).answered
        )
    finally:
        embedders.close()
        store.close()


def _row(settings) -> Collection:  # type: ignore[no-untyped-def]
    store = Store(settings)
    try:
        return store.get_collection("docs")
    finally:
        store.close()


def test_the_first_answer_measures_the_floor_keeps_it_and_refuses_nonsense(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    report = run_ingest(settings, _copy(tmp_path / "docs", "zstd"))
    assert _row(settings).relevance_floor is None  # nothing measured before an answer needs it

    assert _answer(settings, "What compression ratios does zstd reach compared with zlib?")
    assert not _answer(settings, NONSENSE)
    row = _row(settings)
    assert row.floor_chunks == report.chunks and row.floor_vectors_key == collection_vectors_key(row)
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        null = relevance_floor.unrelated_scores(store, embedders.for_collection(row), row)
    finally:
        embedders.close()
        store.close()
    median = statistics.median(null)
    expected = median + FRACTION * (1 - median)
    assert len(null) == len(relevance_floor.NULL_PROBES) and row.relevance_floor == pytest.approx(expected, abs=1e-4)
    assert median < row.relevance_floor < 1


def test_a_collection_that_doubled_is_measured_again(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    folder = _copy(tmp_path / "docs", "zstd")
    run_ingest(settings, folder)
    _answer(settings, "How fast is zstd?")
    before = _row(settings)
    _copy(folder, "redis", "pyenv")
    grown = run_ingest(settings, folder).chunks
    assert stale(_row(settings), grown + before.floor_chunks)  # type: ignore[operator]
    _answer(settings, "How fast is zstd?")  # a new process: the row's floor is stale, so it is measured again
    after = _row(settings)
    assert after.floor_chunks == grown + before.floor_chunks and after.relevance_floor != before.relevance_floor


def test_stale_means_unmeasured_another_model_or_a_size_far_from_the_measured_one() -> None:
    row = Collection(name="c", provider="local", embedding_model="m", relevance_floor=0.4, floor_chunks=100,
                     floor_vectors_key="m")  # fmt: skip
    assert not stale(row, 100) and not stale(row, 51) and not stale(row, 199)
    assert stale(row, 50) and stale(row, 200)
    row.embedding_prompts = '{"query": "q: ", "passage": ""}'  # the same model with prompts: other vectors
    assert stale(row, 100)
    assert stale(Collection(name="c", provider="local", embedding_model="m"), 100)


def test_the_setting_wins_and_a_tiny_collection_uses_the_models_fixed_floor(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "note.md").write_text("# Note\n\nzstd compresses files quickly.\n")
    settings = make_settings(tmp_path)
    assert run_ingest(settings, tiny).chunks < MIN_CHUNKS
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        embedder = embedders.for_collection(store.get_collection("docs"))
        assert RelevanceFloors(store).floor(store.get_collection("docs"), embedder) is None
        fixed = settings.answer_floor(embedder.model)
        assert Answerer(store, embedder, None, settings).default_floor("docs", embedder) == fixed
        chosen = make_settings(tmp_path, answer_min_score=0.05)
        assert Answerer(store, embedder, None, chosen).default_floor("docs", embedder) == 0.05
    finally:
        embedders.close()
        store.close()


def test_a_calibration_the_provider_fails_falls_back_and_is_sent_in_batch_sized_requests(
    tmp_path: Path, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", batch_max_inputs=16)
    run_ingest(settings, _copy(tmp_path / "docs", "zstd"))
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        row = store.get_collection("docs")
        embedder = embedders.for_collection(row)
        fake_openai.queue(*[Fault("status", 500, only="/embeddings")] * 3)  # the first request and its 2 retries
        caplog.set_level(logging.WARNING, logger="searchsvc.answering")
        assert RelevanceFloors(store).floor(row, embedder) is None  # the model's fixed floor serves meanwhile
        assert any(getattr(r, "fields", {}).get("event") == "floor_not_measured" for r in caplog.records)
        assert store.get_collection("docs").relevance_floor is None

        sent = len(fake_openai.embedding_requests())
        assert RelevanceFloors(store).floor(row, embedder) is not None
        sizes = [len(r.body["input"]) for r in fake_openai.embedding_requests()[sent:]]
        assert sizes == [16, 16, 8]  # 40 probes within SEARCHSVC_BATCH_MAX_INPUTS
    finally:
        embedders.close()
        store.close()
