"""SIGKILL `searchsvc ingest` at many points, re-run it: the result equals an uninterrupted run,
with no duplicate chunks and no embedding paid for twice. Plus `searchsvc doctor` and writer locks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.schema import Chunk, Document
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings
from tests.fake_openai import FakeOpenAI

CRASH_POINTS = [
    "parsed:4",
    "embedded_batch:1",
    "embedded_batch:7",
    "sql_write:1",
    "sql_write:2",
    "index_update:1",
    "index_update:2",
    "index_save:1",
    "index_save:2",
    "embedded_batch:3,sql_write:1",  # killed twice: the second run dies too, the third finishes
]
QUERIES = ["redis persistence", "zstd dictionary training", "systemd user ranges", "pyenv shims"]


def _ingest(settings, server: FakeOpenAI, crash_at: str | None = None) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    extra = {"SEARCHSVC_BATCH_MAX_INPUTS": "16", "SEARCHSVC_MAX_IN_FLIGHT": "1"}
    if crash_at:
        extra["SEARCHSVC_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "searchsvc", "ingest", str(SAMPLE_DATA / "markdown"), "-c", "docs", "--json"],
        env=cli_env(settings, server, **extra),
        capture_output=True,
        text=True,
    )


def _snapshot(settings) -> dict:  # type: ignore[no-untyped-def]
    """Everything observable: documents, chunks (no duplicates), vectors and search results."""
    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        with store.session() as session:
            docs = sorted(session.execute(select(Document.key, Document.content_hash, Document.chunk_count)).all())
            rows = session.execute(
                select(Document.key, Chunk.ordinal, Chunk.text, Chunk.embed_hash, Chunk.start_char, Chunk.id).join(
                    Document
                )
            ).all()
        places = [(key, ordinal) for key, ordinal, *_ in rows]
        assert len(places) == len(set(places)), "duplicate chunks"
        index = store.index(store.get_collection("docs"))
        vectors = {(r[0], r[1]): index.vectors_for(np.array([r[5]]))[0].round(5).tobytes() for r in rows}
        # Ties in score may be broken by chunk id, and PostgreSQL sequences skip ids a killed run used.
        results = {
            q: sorted(
                (-round(h.score, 5), h.document_key, h.text[:40]) for h in search(store, provider, "docs", q, 5).hits
            )
            for q in QUERIES
        }
        return {"documents": docs, "chunks": sorted(r[:5] for r in rows), "vectors": vectors, "results": results}
    finally:
        store.close()
        provider.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:  # type: ignore[no-untyped-def]
    with FakeOpenAI() as server:
        settings = remote_settings(tmp_path_factory.mktemp("reference"), server, embedding_model=MODEL)
        assert _ingest(settings, server).returncode == 0
        texts = set(server.embedded_inputs)
        return {"snapshot": _snapshot(settings), "texts": texts}


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_killed_ingest_finishes_on_rerun_exactly_as_if_never_killed(tmp_path: Path, reference, crash_at: str):
    with FakeOpenAI() as server:
        settings = remote_settings(tmp_path, server, embedding_model=MODEL)
        for point in crash_at.split(","):
            killed = _ingest(settings, server, crash_at=point)
            assert killed.returncode == -9, killed.stderr[-500:]
            assert f"crashpoint {point} reached" in killed.stderr  # killed there, not anywhere else
        finished = _ingest(settings, server)
        assert finished.returncode == 0, finished.stderr[-500:]
        assert set(server.embedded_inputs) == reference["texts"]
        assert max(server.embedded_inputs.values()) == 1, "an embedding was paid for twice"
        assert _snapshot(settings) == reference["snapshot"]
        doctor = subprocess.run(
            [sys.executable, "-m", "searchsvc", "doctor", "--json"],
            env=cli_env(settings, server),
            capture_output=True,
            text=True,
        )
        assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"], doctor.stdout


def test_doctor_reports_each_inconsistency_and_repairs_from_sql(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    assert _ingest(settings, fake_openai).returncode == 0
    store = Store(settings)
    try:
        collection = store.get_collection("docs")
        index = store.index(collection)
        index.remove(index.ids()[:3])
        index.add(np.array([10**9]), np.ones((1, collection.dimension), dtype=np.float32) / 8)
        index.save()
    finally:
        store.close()
    env = cli_env(settings, fake_openai)
    found = subprocess.run(
        [sys.executable, "-m", "searchsvc", "doctor", "--json"], env=env, capture_output=True, text=True
    )
    assert found.returncode == 1
    problems = json.loads(found.stdout)["collections"][0]["problems"]
    assert len(problems) == 2, problems  # nothing else (the manifest matches its own file)
    assert any("3 chunks are in SQL but not in the index" in p for p in problems)
    assert any("1 vectors in the index belong to no chunk" in p for p in problems)
    repaired = subprocess.run(
        [sys.executable, "-m", "searchsvc", "doctor", "--repair", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(repaired.stdout)["collections"][0]["repaired"]
    again = subprocess.run(
        [sys.executable, "-m", "searchsvc", "doctor", "--json"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and json.loads(again.stdout)["ok"]


def test_two_ingesters_on_one_collection_never_interleave(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    from tests.fake_openai import Fault

    # Each request of the first ingester sleeps long enough for the second process to start (a second or
    # two of imports on a busy machine) while the first holds the writer lock.
    fake_openai.queue(*[Fault("sleep", seconds=1.5, only="/embeddings")] * 6)
    env = cli_env(settings, fake_openai, SEARCHSVC_BATCH_MAX_INPUTS="64", SEARCHSVC_MAX_IN_FLIGHT="1")
    command = [sys.executable, "-m", "searchsvc", "ingest", str(SAMPLE_DATA / "markdown"), "-c", "docs", "--json"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.monotonic() + 20
    while not fake_openai.embedding_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    first_out, _ = first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.returncode != 0 and "another process is writing to collection 'docs'" in second.stderr
    assert json.loads(first_out)["added"] == 10


def test_queries_during_a_separate_ingest_always_get_whole_answers(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    import threading

    from fastapi.testclient import TestClient

    from searchsvc.api.app import create_app

    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "seed.md").write_text("# Seed\n\nRedis persistence seed document.\n")
    assert _ingest_folder(settings, fake_openai, folder).returncode == 0
    for name in ("redis", "zstd", "systemd", "pyenv"):
        for source in (SAMPLE_DATA / "markdown" / name).glob("*.md"):
            (folder / f"{name}-{source.name}").write_text(source.read_text())
    statuses: list[int] = []
    empty_texts: list[int] = []
    stop = threading.Event()
    with TestClient(create_app(settings)) as client:

        def ask_repeatedly() -> None:
            while not stop.is_set() and len(statuses) < 5000:
                response = client.post("/v1/search", json={"query": "redis persistence", "k": 10})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    empty_texts.extend(1 for hit in response.json()["results"] if not hit["text"])

        worker = threading.Thread(target=ask_repeatedly)
        worker.start()
        try:
            assert _ingest_folder(settings, fake_openai, folder).returncode == 0
        finally:
            stop.set()
            worker.join(timeout=30)
    assert statuses and set(statuses) == {200}
    assert not empty_texts


def _ingest_folder(settings, server: FakeOpenAI, folder: Path) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = cli_env(settings, server, SEARCHSVC_BATCH_MAX_INPUTS="8", SEARCHSVC_MAX_IN_FLIGHT="1")
    return subprocess.run(
        [sys.executable, "-m", "searchsvc", "ingest", str(folder), "-c", "docs"],
        env=env,
        capture_output=True,
        text=True,
    )
