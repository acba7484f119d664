"""Embeddings and chat from different places (issue 19, item 1): each side's base URL, key and timeouts,
each defaulting to the shared ones. Local MiniLM embeddings with a remote chat model take one variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from searchsvc.errors import ConfigError
from searchsvc.providers import make_chat_provider, make_http_client
from tests.conftest import SAMPLE_DATA, make_settings, run_ingest
from tests.fake_openai import FakeOpenAI

QUESTION = {"question": "How do I install pyenv?", "collection": "docs", "min_score": -1, "k": 3}


def test_local_embeddings_with_a_remote_chat_model_take_one_variable(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=None) as chat_server:
        settings = make_settings(tmp_path, chat_base_url=chat_server.url, chat_model="fake-chat")
        report = run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
        assert report.provider == "local"
        with TestClient(create_app(settings)) as api:
            answer = api.post("/v1/ask", json=QUESTION)
        assert answer.status_code == 200, answer.text
        assert answer.json()["answer"].startswith("This is the answer") and answer.json()["model"] == "fake-chat"
        assert [r.path for r in chat_server.requests] == ["/v1/chat/completions"]  # no embedding went there


def test_embeddings_and_chat_each_go_to_their_own_server_with_their_own_key(tmp_path: Path) -> None:
    with FakeOpenAI(api_key="embed-key") as embedder, FakeOpenAI(api_key="chat-key") as chat:
        settings = make_settings(tmp_path, provider="openai", embedding_model="fake-embed", chat_model="fake-chat",
                                 embedding_base_url=embedder.url, embedding_api_key="embed-key",
                                 chat_base_url=chat.url, chat_api_key="chat-key", max_retries=0)  # fmt: skip
        run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
        with TestClient(create_app(settings)) as api:
            answer = api.post("/v1/ask", json=QUESTION)
        assert answer.status_code == 200, answer.text
        assert {r.path for r in embedder.requests} == {"/v1/embeddings"}
        assert {r.path for r in chat.requests} == {"/v1/chat/completions"}


def test_each_unset_side_falls_back_to_the_shared_settings() -> None:
    shared = Settings(api_key="shared", base_url="http://shared/v1", request_timeout=7, request_deadline=70)
    for side in ("embeddings", "chat"):
        found = shared.endpoint(side)  # type: ignore[arg-type]
        assert (found.base_url, found.key, found.timeout, found.deadline) == ("http://shared/v1", "shared", 7, 70)
    split = shared.model_copy(update={"chat_base_url": "http://chat/v1/", "chat_request_timeout": 300.0,
                                      "chat_request_deadline": 600.0})  # fmt: skip
    chat = split.endpoint("chat")
    assert (chat.base_url, chat.key, chat.timeout, chat.deadline) == ("http://chat/v1", "shared", 300, 600)
    assert split.endpoint("embeddings").timeout == 7
    assert make_chat_provider(Settings(provider="local")) is None  # no chat endpoint: extractive answers
    assert make_chat_provider(Settings(provider="local", chat_api_key="k")) is not None


def test_a_missing_key_names_the_side_and_the_variable() -> None:
    with pytest.raises(ConfigError, match="chat: set AIMLAPI_API_KEY"):
        make_http_client(Settings(), chat=True)
    with pytest.raises(ConfigError, match="embeddings: set AIMLAPI_API_KEY"):
        make_http_client(Settings(chat_api_key="k"))
