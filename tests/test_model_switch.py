"""Zero-downtime embedding-model switch (issue 18, part 4): `searchsvc collections migrate NAME --model M` and
/v1/collections/{name}/migrations. A collection built with the local model is embedded again from SQL with a
remote model of the fake API (each text paid once, resumable after a kill), swapped in while a real server
answers searches (none fails), rolled back, and its old generation dropped."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from ingest.model_switch import ModelSwitch
from searchsvc.api.app import create_app
from searchsvc.config import Settings
from searchsvc.errors import (
    IndexMismatchError,
    InvalidInputError,
    MigrationBusyError,
    MigrationStateError,
    NotFoundError,
)
from searchsvc.providers import EmbedderRegistry
from searchsvc.search import search
from searchsvc.storage import database
from searchsvc.storage.model_migrations import migrations_of
from searchsvc.storage.schema import Chunk, UsageRecord
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, make_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI
from tests.servers import serving, wait_until

pytestmark = pytest.mark.ingest_lead

QUERIES = ["redis persistence snapshot", "replication of a master", "keyspace notifications", "lua scripting"]
QUERY_MARK = " zq"  # each search's query is new (numbered): none comes from a query cache
PROBE = "dimension probe"  # the one tiny request that checks an API model exists


def _settings(tmp_path: Path, fake: FakeOpenAI, **overrides: Any) -> Settings:
    """A collection built with the local model; the fake API configured for the model to switch to."""
    return make_settings(tmp_path, api_key=fake.api_key, base_url=fake.url, provider="local",
                         embedding_model=MODEL, **overrides)  # fmt: skip


def _ingested(tmp_path: Path, fake: FakeOpenAI, **overrides: Any) -> Settings:
    """``_settings`` with sample_data's redis folder ingested into ``docs`` with the local model."""
    settings = _settings(tmp_path, fake, **overrides)
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis")
    return settings


def _env(settings: Settings, fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return cli_env(settings, fake, SEARCHSVC_PROVIDER="local", SEARCHSVC_BATCH_MAX_INPUTS="8", **extra)


def _migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "searchsvc", "collections", "migrate", "docs", *args, "--json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _distinct_texts(settings: Settings) -> int:
    store = Store(settings)
    try:
        with store.session() as session:
            return len(set(session.scalars(Chunk.__table__.select().with_only_columns(Chunk.embed_hash))))
    finally:
        store.close()


def _texts_sent(fake: FakeOpenAI) -> list[str]:
    """Every document text the fake API embedded (queries and the probe left out), once per time sent."""
    return [t for t, n in fake.embedded_inputs.items() for _ in range(n) if t != PROBE and QUERY_MARK not in t]


def _queries_sent(fake: FakeOpenAI) -> int:
    return sum(n for t, n in fake.embedded_inputs.items() if QUERY_MARK in t)


def _search_forever(url: str, stop: threading.Event, outcomes: list[tuple[float, int, str]]) -> None:
    with httpx.Client(timeout=30) as client:
        n = 0
        while not stop.is_set():
            query = f"{QUERIES[n % len(QUERIES)]}{QUERY_MARK}{threading.get_ident()}x{n}"
            mode = ("hybrid", "vector")[n % 2]
            answer = client.post(f"{url}/search", json={"collection": "docs", "query": query, "mode": mode, "k": 5})
            outcomes.append((time.monotonic(), answer.status_code, answer.text[:300]))
            n += 1


def test_a_switch_to_an_api_model_under_searches_fails_none_and_pays_each_text_once(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = _ingested(tmp_path, fake_openai)
    fake_openai.latency = 0.05  # a build long enough for many searches to run through it
    env = _env(settings, fake_openai)
    outcomes: list[tuple[float, int, str]] = []
    stop = threading.Event()
    with serving(env) as url:
        searchers = [threading.Thread(target=_search_forever, args=(url, stop, outcomes)) for _ in range(2)]
        for thread in searchers:
            thread.start()
        try:
            wait_until(lambda: len(outcomes), lambda n: n >= 10, 30, "searches before the switch")
            started = time.monotonic()
            done = _migrate(env, "--model", MODEL)
            swapped = time.monotonic()
            queries_before = _queries_sent(fake_openai)
            wait_until(lambda: _queries_sent(fake_openai), lambda n: n >= queries_before + 10, 30,
                       "the server embedding queries with the new model")  # fmt: skip
        finally:
            stop.set()
            for thread in searchers:
                thread.join()
    assert done.returncode == 0, done.stderr
    migration = json.loads(done.stdout)
    assert migration["status"] == "swapped" and migration["to"] == {
        "provider": "openai", "model": MODEL, "dimension": fake_openai.dimension, "generation": 1}  # fmt: skip
    failed = [o for o in outcomes if o[1] != 200]
    assert failed == [], f"{len(failed)} of {len(outcomes)} searches failed: {failed[:3]}"
    during = [o for o in outcomes if started <= o[0] <= swapped]
    assert len(during) >= 10 and any(o[0] > swapped for o in outcomes)
    sent = _texts_sent(fake_openai)
    assert len(sent) == len(set(sent)) == _distinct_texts(settings) == migration["texts_embedded"]
    assert migration["texts_cached"] == 0 and migration["requests"] >= migration["texts_embedded"] / 8
    store = Store(settings)
    try:
        with store.session() as session:
            paid = session.query(UsageRecord).filter_by(purpose="migrate").all()
        assert sum(r.input_tokens for r in paid) == migration["tokens"] and len(paid) == migration["requests"]
    finally:
        store.close()


def test_a_killed_switch_resumes_and_never_pays_a_text_twice(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = _ingested(tmp_path, fake_openai)
    env = _env(settings, fake_openai, SEARCHSVC_MAX_IN_FLIGHT="1")
    killed = _migrate({**env, "SEARCHSVC_CRASH_AT": "migrated_batch:3"}, "--model", MODEL)
    assert killed.returncode == -9 and "crashpoint migrated_batch:3 reached" in killed.stderr
    shown = json.loads(_migrate(env).stdout)["data"]
    assert [(m["status"], m["texts_embedded"], m["requests"]) for m in shown] == [("building", 24, 3)]

    done = _migrate(env, "--model", MODEL)
    assert done.returncode == 0, done.stderr
    migration = json.loads(done.stdout)
    assert migration["status"] == "swapped" and migration["texts_embedded"] == _distinct_texts(settings)
    sent = _texts_sent(fake_openai)
    assert len(sent) == len(set(sent)) == migration["texts_embedded"]  # the 24 kept before the kill not sent again
    assert migration["texts_cached"] == 0


def test_searches_that_embedded_with_the_old_model_finish_on_its_generation_until_it_is_dropped(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = _ingested(tmp_path, fake_openai)
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        old = embedders.for_collection(store.get_collection("docs"))
        before = search(store, old, "docs", QUERIES[0], k=5, mode="vector")
        switch = ModelSwitch(store, embedders)
        with pytest.raises(InvalidInputError, match="already uses"):
            switch.start("docs", "local")
        switch.start("docs", MODEL)
        switch.build("docs")
        new = embedders.for_collection(store.get_collection("docs"))
        assert (new.kind, new.model) == ("openai", MODEL)
        # a query embedded with the old model a moment before the swap: the old generation answers it, the same
        late = search(store, old, "docs", QUERIES[0], k=5, mode="vector")
        assert [(h.chunk_id, round(h.score, 5)) for h in late.hits] == [(h.chunk_id, round(h.score, 5))
                                                                       for h in before.hits]  # fmt: skip
        assert search(store, new, "docs", QUERIES[0], k=5, mode="vector").hits
        with pytest.raises(MigrationStateError, match="open switch"):
            switch.start("docs", "local")  # another switch waits for --rollback or --drop-old
        switch.drop_old("docs")
        with pytest.raises(IndexMismatchError):
            search(store, old, "docs", QUERIES[0], k=5, mode="vector")
        assert store.index_backend.published("docs") is None and store.index_backend.published("docs@1") is not None
    finally:
        embedders.close()
        store.close()


def test_over_http_a_switch_is_built_in_the_background_rolled_back_with_new_documents_and_dropped(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = _ingested(tmp_path, fake_openai)
    with TestClient(create_app(settings)) as api:
        started = api.post("/v1/collections/docs/migrations", json={"model": MODEL})
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "building" and started.json()["from"]["model"] == "all-MiniLM-L6-v2"
        listed = wait_until(lambda: api.get("/v1/collections/docs/migrations").json()["data"],
                            lambda d: d[0]["status"] != "building", 60, "the switch swapped")  # fmt: skip
        assert listed[0]["status"] == "swapped", listed
        assert api.post("/v1/collections/docs/migrations", json={"model": "local"}).status_code == 409
        doc = {"id": "new", "text": "Zanzibar cloves are dried flower buds of an evergreen tree."}
        assert api.post("/v1/collections/docs/documents", json={"documents": [doc]}).status_code == 200
        sent_for_doc = fake_openai.embedded_inputs.total()

        back = api.post("/v1/collections/docs/migrations/rollback")
        assert back.status_code == 200 and back.json()["status"] == "rolled_back", back.text
        assert fake_openai.embedded_inputs.total() == sent_for_doc  # the new text embedded locally, not by the API
        found = api.post("/v1/search", json={"collection": "docs", "query": "Zanzibar cloves", "mode": "vector"})
        assert found.json()["results"][0]["document_key"] == "new"
        collection = api.get("/v1/collections").json()["collections"][0]
        assert (collection["provider"], collection["embedding_model"]) == ("local", "all-MiniLM-L6-v2")

        dropped = api.post("/v1/collections/docs/migrations/drop-old")
        assert dropped.status_code == 200 and dropped.json()["status"] == "finished"
        assert api.post("/v1/collections/docs/migrations/rollback").status_code == 404
        assert api.post("/v1/collections/docs/migrations", json={"model": ""}).status_code == 422
    store = Store(settings)
    try:
        assert store.index_backend.published("docs@1") is None and store.index_backend.published("docs") is not None
    finally:
        store.close()


def test_two_starts_at_once_make_one_switch_and_a_cancelled_one_leaves_nothing(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = _ingested(tmp_path, fake_openai)
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        switch = ModelSwitch(store, embedders)
        started: list[Any] = []

        def start() -> None:
            try:
                started.append(switch.start("docs", MODEL).id)
            except MigrationBusyError as exc:  # the other start held the lock: refused, not doubled
                started.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with store.session() as session:
            rows = [(m.status, m.to_generation) for m in migrations_of(session, store.get_collection("docs").id)]
        assert rows == [("building", 1)], (rows, started)
        switch.cancel("docs")
        assert store.index_backend.published("docs@1") is None
        with pytest.raises(NotFoundError):
            switch.build("docs")
    finally:
        embedders.close()
        store.close()


def test_a_server_lets_go_of_an_old_generation_another_process_dropped(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = _ingested(tmp_path, fake_openai, index_refresh_seconds=0)
    server, embedders = Store(settings), EmbedderRegistry(settings)  # a serving process, and the one switching
    cli = Store(settings)
    try:
        old = embedders.for_collection(server.get_collection("docs"))
        search(server, old, "docs", QUERIES[0], k=3)
        switch = ModelSwitch(cli, embedders)
        switch.start("docs", MODEL)
        switch.build("docs")
        new = embedders.for_collection(server.get_collection("docs"))
        search(server, new, "docs", QUERIES[0], k=3)
        assert set(server.loaded_indexes()) == {"docs", "docs@1"}
        switch.drop_old("docs")
        search(server, new, "docs", QUERIES[1], k=3)
        assert set(server.loaded_indexes()) == {"docs@1"}
    finally:
        embedders.close()
        cli.close()
        server.close()


def test_going_back_to_the_schema_before_switches_keeps_every_document(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = _ingested(tmp_path, fake_openai)
    before = table_counts(settings)
    store = Store(settings)
    try:
        database.downgrade(store.engine, "0019")
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM documents")).scalar_one() == before["documents"]
        database.upgrade(store.engine)
    finally:
        store.close()
    assert table_counts(settings) == before
