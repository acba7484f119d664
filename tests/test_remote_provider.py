"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from searchsvc.errors import (
    ConfigError,
    IndexMismatchError,
    ProviderAuthError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.schema import Chunk
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, make_settings, remote_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI, Fault, bag_of_words_vector, request_token_counts


def test_requests_respect_input_count_and_token_limits(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(
        tmp_path,
        fake_openai,
        embedding_model=MODEL,
        batch_max_inputs=5,
        batch_max_tokens=1500,
        chunk_tokens=400,
        max_in_flight=3,
    )
    report = run_ingest(settings, SAMPLE_DATA / "markdown")
    requests = fake_openai.embedding_requests()
    assert len(requests) > 10
    for request in requests:
        tokens = request_token_counts(request)
        assert len(tokens) <= 5
        assert sum(tokens) <= 1500
        assert max(tokens) <= 400
    assert sum(len(r.body["input"]) for r in requests) == report.chunks - report.chunks_cached
    assert table_counts(settings)["chunks"] == report.chunks


def test_search_over_remote_embeddings_finds_the_right_file(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, SAMPLE_DATA / "markdown")
    provider, store = make_embedding_provider(settings), Store(settings)
    try:
        hits = search(store, provider, "docs", "systemd UIDS GIDS user ranges", k=3).hits
    finally:
        store.close()
        provider.close()
    assert hits[0].document_key == "markdown/systemd/UIDS-GIDS.md"


def test_429_with_retry_after_is_retried_after_the_delay(tmp_path: Path, fake_openai: FakeOpenAI, small_folder):
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_in_flight=1)
    fake_openai.queue(*[Fault("status", 429, {"Retry-After": "0.4"})] * 2)
    started = time.monotonic()
    report = run_ingest(settings, small_folder)
    assert time.monotonic() - started >= 0.8
    assert report.added == 4
    statuses = fake_openai.embedding_requests()
    assert len(statuses) == report.embedding_requests + 2


def test_server_errors_and_resets_are_retried(tmp_path: Path, fake_openai: FakeOpenAI, small_folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=4, max_in_flight=1)
    fake_openai.queue(Fault("status", 500), Fault("status", 502), Fault("reset"), Fault("status", 503))
    report = run_ingest(settings, small_folder)
    assert report.added == 4
    assert table_counts(settings)["documents"] == 4


def test_responses_out_of_order_are_put_back_by_index(tmp_path: Path, fake_openai: FakeOpenAI, small_folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_in_flight=1)
    fake_openai.queue(Fault("shuffled"))
    run_ingest(settings, small_folder)
    first = fake_openai.embedding_requests()[0].body["input"]
    provider = make_embedding_provider(settings)
    store = Store(settings)
    try:
        collection = store.get_collection("docs")
        index = store.index(collection)
        with store.session() as session:
            rows = session.execute(select(Chunk.id, Chunk.embed_hash)).all()
        import hashlib

        by_hash = {h: i for i, h in rows}
        for text in first[:3]:
            chunk_id = by_hash[hashlib.sha256(text.encode()).hexdigest()]
            stored = index.vectors_for(np.array([chunk_id]))[0]
            assert np.allclose(stored, bag_of_words_vector(text, 64), atol=1e-6)
    finally:
        store.close()
        provider.close()


@pytest.mark.parametrize("fault", ["wrong_count", "nan"])
def test_bad_vectors_are_rejected_and_nothing_is_stored(tmp_path, fake_openai, small_folder, fault: str) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_in_flight=1)
    fake_openai.queue(Fault(fault))
    with pytest.raises(ProviderResponseError):
        run_ingest(settings, small_folder)
    assert table_counts(settings) == {"documents": 0, "chunks": 0, "embeddings": 0}


def test_malformed_json_is_retried_then_rejected_and_nothing_is_stored(tmp_path, fake_openai, small_folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=2, max_in_flight=1)
    fake_openai.queue(Fault("garbage"), Fault("truncated"), Fault("garbage"))
    with pytest.raises(ProviderUnavailableError, match="not valid JSON"):
        run_ingest(settings, small_folder)
    assert table_counts(settings) == {"documents": 0, "chunks": 0, "embeddings": 0}


def test_wrong_dimension_is_rejected_and_nothing_new_is_stored(tmp_path, fake_openai, small_folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_in_flight=1)
    run_ingest(settings, small_folder)
    before = table_counts(settings)
    (small_folder / "new.md").write_text("# New\n\nA brand new document about pyenv shims.\n")
    fake_openai.queue(Fault("wrong_dimension"))
    with pytest.raises(IndexMismatchError, match="32"):
        run_ingest(settings, small_folder)
    assert table_counts(settings) == before


def test_401_names_the_variable_to_set(tmp_path: Path, small_folder: Path) -> None:
    with FakeOpenAI(api_key="the-right-key") as server:
        settings = remote_settings(tmp_path, server, api_key="a-wrong-key", embedding_model=MODEL)
        with pytest.raises(ProviderAuthError, match="AIMLAPI_API_KEY"):
            run_ingest(settings, small_folder)
        assert len(server.requests) == 1  # an auth failure is not retried
    assert table_counts(settings)["embeddings"] == 0


def test_cli_reports_401_in_one_line_and_exits_non_zero(tmp_path: Path, small_folder: Path) -> None:
    with FakeOpenAI(api_key="the-right-key") as server:
        settings = remote_settings(tmp_path, server, embedding_model=MODEL)
        env = cli_env(settings, server, AIMLAPI_API_KEY="a-wrong-key")
        result = subprocess.run(
            [sys.executable, "-m", "searchsvc", "ingest", str(small_folder)], capture_output=True, text=True, env=env
        )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "AIMLAPI_API_KEY" in errors[0]
    assert result.stderr.strip().splitlines()[-1] == errors[0]


def test_missing_key_for_the_default_api_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, provider="openai")
    with pytest.raises(ConfigError, match="AIMLAPI_API_KEY"):
        make_embedding_provider(settings)


def test_no_key_means_the_local_model(tmp_path: Path) -> None:
    provider = make_embedding_provider(make_settings(tmp_path))
    assert provider.kind == "local" and "no API key" in provider.describe()


@pytest.mark.parametrize("shape", ["list", "array", "keyed"])
def test_models_command_lists_the_servers_models_in_every_documented_shape(tmp_path, fake_openai, shape) -> None:
    fake_openai.models_shape = shape
    env = cli_env(remote_settings(tmp_path, fake_openai), fake_openai)
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", "models", "--json"], capture_output=True, text=True, env=env, check=True
    )
    listed = json.loads(result.stdout)["models"]
    assert [m["id"] for m in listed if m["provider"] == "api"] == ["text-embedding-3-small", "gpt-4o-mini"]
    assert [m["id"] for m in listed if m["provider"] == "local"] == ["all-MiniLM-L6-v2"]
    human = subprocess.run([sys.executable, "-m", "searchsvc", "models"], capture_output=True, text=True, env=env)
    assert "gpt-4o-mini  (api" in human.stdout


def test_an_empty_model_list_is_said_and_the_http_api_lists_models_too(tmp_path, fake_openai) -> None:
    fake_openai.models = []
    settings = remote_settings(tmp_path, fake_openai)
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", "models"],
        capture_output=True,
        text=True,
        env=cli_env(settings, fake_openai),
    )
    assert result.returncode == 0 and "lists no models" in result.stderr
    fake_openai.models = [{"id": "text-embedding-3-large", "type": "embedding"}]
    fake_openai.models_shape = "keyed"
    from fastapi.testclient import TestClient

    from searchsvc.api.app import create_app

    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [(m["id"], m["provider"]) for m in body["data"]] == [
        ("all-MiniLM-L6-v2", "local"),
        ("text-embedding-3-large", "api"),
    ]


def test_change_delete_add_reembeds_only_what_changed(tmp_path, fake_openai, small_folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    first = run_ingest(settings, small_folder)
    unchanged_texts = set(fake_openai.embedded_inputs)
    fake_openai.embedded_inputs.clear()

    changed = small_folder / "COMMANDS.md"
    changed.write_text(changed.read_text() + "\n\n## pyenv frobnicate\n\nFrobnicates the shims, a new command.\n")
    (small_folder / "python-build.md").unlink()
    (small_folder / "added.md").write_text("# Added\n\nAn added document about virtualenv hooks.\n")
    second = run_ingest(settings, small_folder, prune=True)

    assert (second.added, second.changed, second.unchanged, second.removed) == (1, 1, 2, 1)
    embedded = set(fake_openai.embedded_inputs)
    assert all(count == 1 for count in fake_openai.embedded_inputs.values())
    assert embedded and not embedded & unchanged_texts  # only new text was paid for
    assert any("frobnicate" in text for text in embedded) and any("virtualenv hooks" in t for t in embedded)
    assert len(embedded) < first.chunks // 4
    counts = table_counts(settings)
    assert counts["documents"] == 4


def test_a_collection_refuses_vectors_from_another_model(tmp_path, fake_openai, small_folder, local_provider) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, small_folder)
    store = Store(settings)
    try:
        with pytest.raises(IndexMismatchError, match="new collection"):
            store.ensure_collection("docs", local_provider)
    finally:
        store.close()
