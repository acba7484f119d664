"""A chat server that answers with another model than asked (issue 19, item 10): llama.cpp serves the model it
loaded whatever the request names; a proxy may route elsewhere. The fake server names ``answer_model`` in
its responses; searchsvc reports ``model_substituted`` with the answer and warns once per pair, and takes
a dated snapshot, a provider prefix or another case for the same model."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.providers.substitution import same_model
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI
from tests.test_api import sse_events

pytestmark = pytest.mark.openai_compat

QUESTION = {"question": "How does redis persist data?", "min_score": -1, "k": 3}


@pytest.fixture
def chat_model() -> str:
    """A model name of this test's own: warnings are once per (requested, answered) pair per process."""
    return f"gpt-4o-mini-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(tmp_path: Path, fake_openai: FakeOpenAI, chat_model: str) -> Iterator[TestClient]:
    # The chat request is the subject; the fake's bag-of-words vectors say little about relevance: no floor.
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", chat_model=chat_model,
                               answer_min_score=-1.0)  # fmt: skip
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis")
    with TestClient(create_app(settings)) as client:
        yield client


def _warnings(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        getattr(record, "fields", {})
        for record in caplog.records
        if record.name == "searchsvc.provider" and record.levelno == logging.WARNING
        and getattr(record, "fields", {}).get("event") == "model_substituted"
    ]  # fmt: skip


def test_a_substituted_model_is_reported_with_the_answer_and_warned_once(
    api: TestClient, fake_openai: FakeOpenAI, chat_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.answer_model = "some-default.gguf"
    caplog.set_level(logging.WARNING, logger="searchsvc.provider")
    answers = [api.post("/v1/ask", json=QUESTION) for _ in range(2)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "some-default.gguf"  # the model that answered, as before
        assert body["model_substituted"] == {"requested": chat_model, "answered": "some-default.gguf"}
    assert _warnings(caplog) == [{"event": "model_substituted", "requested": chat_model,
                                  "answered": "some-default.gguf"}]  # fmt: skip
    assert fake_openai.chat_requests()[-1].body["model"] == chat_model


def test_a_substituted_model_is_in_a_streamed_answers_done_event(
    api: TestClient, fake_openai: FakeOpenAI, chat_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.answer_model = "some-default.gguf"
    caplog.set_level(logging.WARNING, logger="searchsvc.provider")
    with api.stream("POST", "/v1/ask", json={**QUESTION, "stream": True}) as response:
        response.read()
    name, done = sse_events(response)[-1]
    assert name == "done" and done["model"] == "some-default.gguf"
    assert done["model_substituted"] == {"requested": chat_model, "answered": "some-default.gguf"}
    assert [w["answered"] for w in _warnings(caplog)] == ["some-default.gguf"]


def test_compared_models_report_each_substitution(api: TestClient, fake_openai: FakeOpenAI, chat_model: str) -> None:
    fake_openai.answer_model = "some-default.gguf"
    answer = api.post("/v1/ask", json={**QUESTION, "models": [chat_model, "some-default"]})
    assert answer.status_code == 200, answer.text
    by_model = {a["model_substituted"]["requested"] if "model_substituted" in a else None: a
                for a in answer.json()["answers"]}  # fmt: skip
    assert set(by_model) == {chat_model, None}  # "some-default" is some-default.gguf: the same model


def test_rag_chat_completions_carry_it_in_the_extension(
    api: TestClient, fake_openai: FakeOpenAI, chat_model: str
) -> None:
    fake_openai.answer_model = "qwen2.5-7b-instruct-q4_k_m.gguf"
    messages = [{"role": "user", "content": "How does redis persist data?"}]
    answer = api.post("/v1/chat/completions", json={"model": "rag:docs", "messages": messages})
    assert answer.status_code == 200, answer.text
    assert answer.json()["searchsvc"]["model_substituted"] == {
        "requested": chat_model,
        "answered": "qwen2.5-7b-instruct-q4_k_m.gguf",
    }


@pytest.mark.parametrize("stream", [False, True])
def test_anthropics_format_is_checked_too_whole_and_streamed(
    tmp_path: Path, fake_openai: FakeOpenAI, chat_model: str, stream: bool
) -> None:
    # The Messages API names the model in the reply, or once in a stream's message_start.
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", chat_model=chat_model,
                               chat_format="anthropic", answer_min_score=-1.0)  # fmt: skip
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis")
    fake_openai.answer_model = "claude-3-haiku-20240307"
    with (
        TestClient(create_app(settings)) as client,
        client.stream("POST", "/v1/ask", json={**QUESTION, "stream": stream}) as response,
    ):
        response.read()
    assert response.status_code == 200, response.text
    assert fake_openai.requests[-1].path.endswith("/messages")
    result = sse_events(response)[-1][1] if stream else response.json()
    assert result["model_substituted"] == {"requested": chat_model, "answered": "claude-3-haiku-20240307"}


@pytest.mark.parametrize("stream", [False, True])
def test_a_dated_snapshot_of_the_model_asked_for_is_not_flagged(
    api: TestClient, fake_openai: FakeOpenAI, chat_model: str, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    fake_openai.answer_model = f"{chat_model}-2024-07-18"
    caplog.set_level(logging.WARNING, logger="searchsvc.provider")
    with api.stream("POST", "/v1/ask", json={**QUESTION, "stream": stream}) as response:
        response.read()
    assert response.status_code == 200
    result = sse_events(response)[-1][1] if stream else response.json()
    assert "model_substituted" not in result and result["model"] == f"{chat_model}-2024-07-18"
    assert _warnings(caplog) == []


@pytest.mark.parametrize(
    "requested,answered",
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4", "gpt-4-0613"),
        ("openai/gpt-4o", "gpt-4o-2024-08-06"),
        ("GPT-4o", "gpt-4o"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("claude-3-5-sonnet", "claude-3-5-sonnet@20241022"),
        ("qwen2.5-7b-instruct", "/models/qwen2.5-7b-instruct.gguf"),
        ("llama3", "llama3:latest"),
    ],
)
def test_harmless_differences_are_the_same_model(requested: str, answered: str) -> None:
    assert same_model(requested, answered)


@pytest.mark.parametrize(
    "requested,answered",
    [
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4o", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o-mini", "some-default.gguf"),
        ("meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
    ],
)
def test_other_models_are_not(requested: str, answered: str) -> None:
    assert not same_model(requested, answered)
