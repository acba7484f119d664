"""Chat completions, plain and streamed, against the fake OpenAI server."""

from __future__ import annotations

import pytest

from searchsvc.errors import ProviderResponseError
from searchsvc.providers.chat import ChatProvider
from searchsvc.providers.http_client import OpenAICompatibleClient
from tests.fake_openai import FakeOpenAI, Fault


def _provider(server: FakeOpenAI) -> ChatProvider:
    return ChatProvider(OpenAICompatibleClient(server.url, server.api_key, timeout=5, max_retries=2), "gpt-4o-mini")


def test_completion_passes_parameters_through_and_returns_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "Use pyenv global [1]."
    chat = _provider(fake_openai)
    result = chat.complete(
        [{"role": "user", "content": "hi"}], params={"temperature": 0.2, "top_k": 5, "repetition_penalty": 1.1}
    )
    assert result.text == "Use pyenv global [1]." and result.usage["total_tokens"] > 0
    sent = fake_openai.chat_requests()[0].body
    assert (sent["temperature"], sent["top_k"], sent["repetition_penalty"]) == (0.2, 5, 1.1)


def test_a_rate_limited_completion_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.queue(Fault("status", 429, {"Retry-After": "0.1"}))
    assert _provider(fake_openai).complete([{"role": "user", "content": "hi"}]).text
    assert len(fake_openai.chat_requests()) == 2


def test_streaming_yields_deltas_then_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "one two three"
    deltas = list(_provider(fake_openai).stream([{"role": "user", "content": "count"}]))
    assert "".join(d.text for d in deltas) == "one two three"
    assert deltas[-1].usage and any(d.finish_reason == "stop" for d in deltas)


def test_a_stream_cut_midway_is_reported_as_cut(fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "one two three four five six"
    fake_openai.queue(Fault("cut_stream"))
    with pytest.raises(ProviderResponseError, match="cut"):
        list(_provider(fake_openai).stream([{"role": "user", "content": "count"}]))


def test_a_stream_asks_the_api_for_token_usage(fake_openai: FakeOpenAI) -> None:
    deltas = list(_provider(fake_openai).stream([{"role": "user", "content": "count"}]))
    assert fake_openai.chat_requests()[0].body["stream_options"] == {"include_usage": True}
    assert deltas[-1].usage == {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}


def test_a_server_that_refuses_stream_options_still_streams_the_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.refuse_stream_options = True
    fake_openai.chat_reply = "one two three"
    deltas = list(_provider(fake_openai).stream([{"role": "user", "content": "count"}]))
    assert "".join(d.text for d in deltas) == "one two three"
    assert [("stream_options" in r.body) for r in fake_openai.chat_requests()] == [True, False]
