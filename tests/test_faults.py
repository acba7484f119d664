"""Every fault kind of the embeddings/chat API ends in a retry that succeeds or a clear error,
and nothing partial is stored."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.errors import ProviderError, ProviderResponseError, ProviderUnavailableError
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest, table_counts
from tests.fake_openai import Fault

RECOVERABLE = {
    "429 burst with Retry-After": [Fault("status", 429, {"Retry-After": "0.2"})] * 3,
    "429 burst without Retry-After": [Fault("status", 429)] * 3,
    "500": [Fault("status", 500)],
    "502 then 503": [Fault("status", 502), Fault("status", 503)],
    "connection reset": [Fault("reset")] * 2,
    "slow past the timeout": [Fault("sleep", seconds=2.5)],
    "truncated JSON": [Fault("truncated")],
    "malformed JSON": [Fault("garbage")],
}
FATAL = {
    "wrong number of vectors": (Fault("wrong_count"), ProviderResponseError, "asked for"),
    "NaN values": (Fault("nan"), ProviderResponseError, "NaN"),
    "400 bad request": (Fault("status", 400), ProviderError, "HTTP 400"),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    target.mkdir()
    (target / "redis.md").write_text((SAMPLE_DATA / "markdown/redis/README.md").read_text())
    return target


@pytest.mark.parametrize("name", RECOVERABLE)
def test_transient_faults_are_retried_until_the_ingest_succeeds(tmp_path, fake_openai, folder, name: str) -> None:
    settings = remote_settings(
        tmp_path, fake_openai, embedding_model=MODEL, max_retries=4, request_timeout=1.0, max_in_flight=1
    )
    fake_openai.queue(*[Fault(f.kind, f.status, f.headers, f.seconds, only="/embeddings") for f in RECOVERABLE[name]])
    report = run_ingest(settings, folder)
    assert report.added == 1 and table_counts(settings)["chunks"] == report.chunks
    assert len(fake_openai.embedding_requests()) == report.embedding_requests + len(RECOVERABLE[name])


@pytest.mark.parametrize("name", FATAL)
def test_bad_responses_are_clear_errors_and_store_nothing(tmp_path, fake_openai, folder, name: str) -> None:
    fault, error, message = FATAL[name]
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_in_flight=1)
    fake_openai.queue(fault)
    with pytest.raises(error, match=message):
        run_ingest(settings, folder)
    assert table_counts(settings) == {"documents": 0, "chunks": 0, "embeddings": 0}


def test_a_provider_that_never_recovers_gives_up_with_a_clear_error(tmp_path, fake_openai, folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=2, max_in_flight=1)
    fake_openai.queue(*[Fault("status", 503)] * 3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match=r"after 3 attempts in [\d.]+ s \(deadline 120 s\): HTTP 503"):
        run_ingest(settings, folder)
    assert time.monotonic() - started < 10
    assert table_counts(settings) == {"documents": 0, "chunks": 0, "embeddings": 0}


def test_an_unreachable_api_never_corrupts_what_is_stored(tmp_path, fake_openai, folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    before = table_counts(settings)
    (folder / "new.md").write_text("# New\n\nSomething new about redis clusters.\n")
    dead = settings.model_copy(update={"base_url": "http://127.0.0.1:9/v1", "max_retries": 1})
    with pytest.raises(ProviderUnavailableError, match=re.escape("cannot connect to http://127.0.0.1:9/v1")):
        run_ingest(dead, folder)
    assert table_counts(settings) == before


def test_chat_faults_over_http(tmp_path, fake_openai, folder) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", max_retries=2)
    run_ingest(settings, folder)
    with TestClient(create_app(settings)) as client:
        fake_openai.queue(Fault("status", 500, only="/chat/completions"), Fault("garbage", only="/chat/completions"))
        body = client.post("/v1/ask", json={"question": "What is Redis?", "min_score": -1}).json()
        assert body["answered"] and body["answer"]
        fake_openai.queue(*[Fault("status", 503, only="/chat/completions")] * 3)
        failed = client.post("/v1/ask", json={"question": "What is Redis?", "min_score": -1})
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "provider_unavailable"
        fake_openai.queue(*[Fault("status", 503, only="/embeddings")] * 3)
        search = client.post("/v1/search", json={"query": "redis", "mode": "vector"})
        assert search.status_code == 503
