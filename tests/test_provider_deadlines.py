"""A dead or silent API fails fast with one clear line, and readiness says so without paid calls."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.errors import ProviderUnavailableError
from tests.conftest import MODEL, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    target.mkdir()
    (target / "note.md").write_text("# Note\n\nRedis keeps its data in memory and persists it to disk.\n")
    return target


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung proxy, a stuck model server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_fails_within_seconds_in_one_line_naming_the_url(tmp_path, folder) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with FakeOpenAI() as unused:
        settings = remote_settings(tmp_path, unused, embedding_model=MODEL)
        env = cli_env(settings, unused, SEARCHSVC_BASE_URL=url, SEARCHSVC_MAX_RETRIES="6")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", "ingest", str(folder)], env=env, capture_output=True, text=True
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0 and elapsed < 8, elapsed  # the interpreter's start-up included
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot connect to {url}" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_silent_api_is_abandoned_at_the_calls_deadline(tmp_path, folder, silent_api, fake_openai) -> None:
    settings = remote_settings(
        tmp_path, fake_openai, embedding_model=MODEL, base_url=silent_api, request_deadline=2.0, max_retries=6
    )
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match=r"deadline 2 s\): timed out"):
        run_ingest(settings, folder)
    assert time.monotonic() - started < 4


def test_search_gives_up_at_the_query_deadline_and_readiness_reports_the_api(
    tmp_path, folder, silent_api, fake_openai
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    run_ingest(settings, folder)
    silent = remote_settings(
        tmp_path, fake_openai, embedding_model=MODEL, collection="docs", base_url=silent_api, query_deadline=1.5
    )
    with TestClient(create_app(silent)) as client:
        started = time.monotonic()
        response = client.post("/v1/search", json={"query": "redis memory", "mode": "vector"})
        # 1.5 s of waiting, plus the first search's start-up (the provider's tokenizer loads): well under the
        # 5 s one attempt could wait without the query deadline
        assert response.status_code == 503 and time.monotonic() - started < 4.5
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["unreachable"] == ["embeddings", "chat"]
        assert "timed out" in ready.json()["providers"]["embeddings"]["problem"]
        keyword = client.post("/v1/search", json={"query": "redis memory", "mode": "keyword"})
        assert keyword.status_code == 200 and keyword.json()["results"]  # no API needed


def test_readiness_probes_the_api_for_free_and_at_most_once_per_interval(tmp_path, folder, fake_openai) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    run_ingest(settings, folder)
    before = len(fake_openai.requests)
    with TestClient(create_app(settings)) as client:
        for _ in range(5):
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["providers"]["embeddings"]["reachable"]
    probes = fake_openai.requests[before:]
    assert [r.path for r in probes] == ["/v1/models", "/v1/models"]  # one per API (embeddings, chat), no paid call


def test_one_failed_call_does_not_make_the_service_unready(tmp_path, folder, fake_openai) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", max_retries=1)
    run_ingest(settings, folder)
    with TestClient(create_app(settings)) as client:
        fake_openai.queue(*[Fault("status", 503, only="/embeddings")] * 2)
        assert client.post("/v1/search", json={"query": "redis", "mode": "vector"}).status_code == 503
        ready = client.get("/readyz")  # the failure is checked with a free probe, which succeeds
        assert ready.status_code == 200 and ready.json()["providers"]["embeddings"]["reachable"]
