"""The fake OpenAI server is faithful where our client depends on it: proven with the official SDK.

The first two tests make the calls of the AI/ML API docs' quickstart (docs.aimlapi.com,
"Supported SDKs" and the text-embedding-3-small page) with the official ``openai`` SDK, only
``base_url`` and the key pointing at the fake server.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from openai import BadRequestError, OpenAI

from tests.fake_openai import MAX_INPUTS, FakeOpenAI, bag_of_words_vector


@pytest.fixture
def sdk(fake_openai: FakeOpenAI) -> OpenAI:
    return OpenAI(api_key=fake_openai.api_key, base_url=fake_openai.url, max_retries=0)


def test_the_docs_quickstart_chat_runs_unchanged_through_the_official_sdk(sdk: OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="google/gemma-3-4b-it",
        messages=[{"role": "user", "content": "Tell me about San Francisco"}],
        temperature=0.7,
        max_tokens=256,
    )
    assert completion.choices[0].message.content == "This is the answer [1]."
    assert completion.object == "chat.completion" and completion.id and completion.created > 0
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_the_docs_embedding_example_runs_unchanged_and_base64_is_honoured(sdk, fake_openai) -> None:
    response = sdk.embeddings.create(input="Laura is a DJ.", model="text-embedding-3-small")
    assert fake_openai.embedding_requests()[-1].body["encoding_format"] == "base64"  # the SDK's default
    vector = np.array(response.data[0].embedding)
    assert np.allclose(vector, bag_of_words_vector("Laura is a DJ.", fake_openai.dimension), atol=1e-6)
    assert response.usage.prompt_tokens == 5 and response.object == "list"  # 5, as the docs page shows


def test_streams_carry_usage_only_when_asked(sdk: OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    plain = list(sdk.chat.completions.create(model="m", messages=messages, stream=True))  # type: ignore[arg-type]
    assert all(chunk.usage is None for chunk in plain) and plain[0].object == "chat.completion.chunk"
    asked = list(
        sdk.chat.completions.create(
            model="m",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert asked[-1].choices == [] and asked[-1].usage is not None and asked[-1].usage.total_tokens > 0
    assert all(chunk.usage is None for chunk in asked[:-1]) and len({c.id for c in asked}) == 1


@pytest.mark.parametrize(
    "inputs,code",
    [
        (["word " * 9000], "context_length_exceeded"),
        (["x"] * (MAX_INPUTS + 1), None),
        (["word " * 8000] * 40, "max_tokens_per_request"),
    ],
)
def test_requests_over_the_apis_limits_are_refused_with_its_error_shape(sdk, inputs, code) -> None:
    with pytest.raises(BadRequestError) as refused:
        sdk.embeddings.create(input=inputs, model="text-embedding-3-small")
    error = refused.value.body
    assert isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == code


def test_rate_limit_headers_are_sent(fake_openai: FakeOpenAI) -> None:
    fake_openai.tokens_per_minute = 10_000
    headers = httpx.post(
        f"{fake_openai.url}/embeddings",
        json={"model": "m", "input": ["hello world"]},
        headers={"Authorization": f"Bearer {fake_openai.api_key}"},
    ).headers
    assert int(headers["x-ratelimit-remaining-tokens"]) == 10_000 - 2
    assert headers["x-ratelimit-reset-tokens"].endswith("ms") and headers["x-ratelimit-limit-requests"]


@pytest.mark.parametrize("shape", ["list", "array", "keyed"])
def test_models_come_in_each_documented_shape(fake_openai: FakeOpenAI, shape: str) -> None:
    fake_openai.models_shape = shape
    body = httpx.get(f"{fake_openai.url}/models", headers={"Authorization": f"Bearer {fake_openai.api_key}"}).json()
    ids = {"list": lambda: [m["id"] for m in body["data"]], "array": lambda: [m["id"] for m in body]}
    assert ids.get(shape, lambda: list(body))() == ["text-embedding-3-small", "gpt-4o-mini"]
