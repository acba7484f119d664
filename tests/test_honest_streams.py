"""Answers end honestly (issue 19, item 9): an ``{"error": ...}`` event inside a chat stream ends the answer with
the ``error`` event and ``answered: false``; a stream a proxy closed as a normal stop without a word is an error,
not an empty answer; ``models`` with ``stream`` is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault
from tests.test_api import sse_events

ASK = {"question": "redis persistence", "min_score": -1}


@pytest.fixture
def api(tmp_path: Path, fake_openai: FakeOpenAI):  # type: ignore[no-untyped-def]
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", max_retries=0)
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis")
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_error_event_inside_the_stream_ends_the_answer_unanswered(api: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "Redis saves snapshots to disk [1] and can append every write to a log [1]."
    fake_openai.queue(Fault("error_in_stream", only="/chat/completions"))
    with api.stream("POST", "/v1/ask", json={**ASK, "stream": True}) as response:
        response.read()
    events = sse_events(response)
    assert [n for n, _ in events][:2] == ["sources", "delta"]
    name, data = events[-1]
    assert name == "error" and data["answered"] is False and "upstream model crashed" in data["error"]["message"]
    assert "done" not in [n for n, _ in events]


def test_an_answer_closed_without_a_word_is_an_error_not_an_empty_answer(
    api: TestClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.queue(Fault("empty_stop", only="/chat/completions"))
    with api.stream("POST", "/v1/ask", json={**ASK, "stream": True}) as response:
        response.read()
    name, data = sse_events(response)[-1]
    assert name == "error" and data["answered"] is False
    assert "ended without writing anything" in data["error"]["message"]
    fake_openai.chat_reply = ""
    answer = api.post("/v1/ask", json=ASK)
    assert answer.status_code == 502 and "ended without writing anything" in answer.json()["error"]["message"]


def test_comparing_models_is_not_streamed_silently(api: TestClient) -> None:
    refused = api.post("/v1/ask", json={**ASK, "stream": True, "models": ["a", "b"]})
    assert refused.status_code == 422 and "leave out stream, or models" in refused.text
