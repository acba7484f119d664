"""Server dialects (issue 19, item 12): ``extra_body`` reaches the chat server's request body unchanged (from
/v1/ask, streamed or not, /v1/responses, ``searchsvc ask --extra-body``), keys searchsvc sets itself are
refused with the field to use, and every generation option of ``searchsvc ask`` reaches the request."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI
from tests.test_api import sse_events

LLAMA_CPP = {"repeat_penalty": 1.1, "mirostat": 2, "mirostat_tau": 5.0}
VLLM = {"min_p": 0.05, "guided_json": {"type": "object", "properties": {"answer": {"type": "string"}}}}
QUESTION = {"question": "How does redis persist data?", "min_score": -1, "k": 3}


@pytest.fixture
def settings(tmp_path: Path, fake_openai: FakeOpenAI) -> Settings:
    # These tests check the chat request. The fake's bag-of-words vectors say little about relevance, so its
    # collection's measured floor could refuse a question before any request: no floor here.
    found = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs", chat_model="llama",
                            answer_min_score=-1.0)  # fmt: skip
    run_ingest(found, SAMPLE_DATA / "markdown" / "redis")
    return found


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _answer_body(fake: FakeOpenAI) -> dict[str, Any]:
    """The body of the last chat request (the answer's)."""
    return fake.chat_requests()[-1].body


def test_extra_body_reaches_the_chat_server_unchanged(api: TestClient, fake_openai: FakeOpenAI) -> None:
    extra = LLAMA_CPP | VLLM
    answer = api.post("/v1/ask", json={**QUESTION, "temperature": 0.2, "extra_body": extra})
    assert answer.status_code == 200, answer.text
    body = _answer_body(fake_openai)
    assert {key: body[key] for key in extra} == extra and body["temperature"] == 0.2
    assert body["model"] == "llama" and body["messages"][0]["role"] == "system"


def test_extra_body_reaches_a_streamed_answer_too(api: TestClient, fake_openai: FakeOpenAI) -> None:
    with api.stream("POST", "/v1/ask", json={**QUESTION, "stream": True, "extra_body": LLAMA_CPP}) as response:
        response.read()
    assert [name for name, _ in sse_events(response)][-1] == "done"
    body = _answer_body(fake_openai)
    assert body["stream"] is True and {key: body[key] for key in LLAMA_CPP} == LLAMA_CPP


def test_extra_body_goes_to_every_compared_model(api: TestClient, fake_openai: FakeOpenAI) -> None:
    answer = api.post("/v1/ask", json={**QUESTION, "models": ["a", "b"], "extra_body": {"min_p": 0.1}})
    assert answer.status_code == 200, answer.text
    assert sorted(r.body["model"] for r in fake_openai.chat_requests() if r.body.get("min_p") == 0.1) == ["a", "b"]


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({"model": "other"}, "extra_body cannot hold 'model': searchsvc sets it itself"),
        ({"messages": []}, "extra_body cannot hold 'messages'"),
        ({"stream": True}, "extra_body cannot hold 'stream'"),
        ({"stream_options": {"include_usage": False}}, "extra_body cannot hold 'stream_options'"),
        ({"tools": []}, "extra_body cannot hold 'tools'"),
        ({"tool_choice": "none"}, "extra_body cannot hold 'tool_choice'"),
        ({"temperature": 0.5}, "it has its own field; send temperature instead"),
        ({"top_k": 20}, "send top_k instead"),
        ({"max_completion_tokens": 20}, "send max_tokens instead"),
        ({"logprobs": True}, "send logprobs instead"),
        ([1, 2], "extra_body must be a JSON object of parameters"),
        ("repeat_penalty=1.1", "extra_body must be a JSON object of parameters"),
        ({"grammar": "x" * 20_000}, "it may be 16,384 at most"),
        ({f"k{n}": n for n in range(65)}, "it may have 64 at most"),
    ],
)
def test_extra_body_that_cannot_be_merged_is_a_422_naming_the_key(
    api: TestClient, fake_openai: FakeOpenAI, extra: Any, expected: str
) -> None:
    answer = api.post("/v1/ask", json={**QUESTION, "extra_body": extra})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert "extra_body" in error["message"] and expected in error["message"], error
    assert fake_openai.chat_requests() == []


def test_the_responses_api_takes_extra_body_as_a_field(api: TestClient, fake_openai: FakeOpenAI) -> None:
    """Top-level keys it does not know are ignored, as before; ``extra_body`` (the SDK's
    ``extra_body={"extra_body": {...}}``) is merged into the chat request."""
    client = OpenAI(base_url=f"{api.base_url}/v1", api_key="unused", http_client=api)
    client.responses.create(model="llama", input="What is redis?", max_output_tokens=50,
                            extra_body={"extra_body": LLAMA_CPP, "unknown_field": 1})  # fmt: skip
    body = _answer_body(fake_openai)
    assert {key: body[key] for key in LLAMA_CPP} == LLAMA_CPP and body["max_tokens"] == 50
    assert "unknown_field" not in body and "extra_body" not in body
    refused = api.post("/v1/responses", json={"model": "llama", "input": "hi", "extra_body": {"max_tokens": 9}})
    assert refused.status_code == 400 and "send max_output_tokens instead" in refused.json()["error"]["message"]


def test_rag_chat_completions_pass_the_sdks_extra_body_on_at_the_top_level(
    api: TestClient, fake_openai: FakeOpenAI
) -> None:
    """The OpenAI SDK's ``extra_body=`` merges its keys into the request's top level: a rag: model passes
    the keys it does not know on as they are. A literal ``extra_body`` key is refused with what to do."""
    client = OpenAI(base_url=f"{api.base_url}/v1", api_key="unused", http_client=api)
    messages: Any = [{"role": "user", "content": "How does redis persist data?"}]
    client.chat.completions.create(model="rag:docs", messages=messages, extra_body=LLAMA_CPP | VLLM)
    body = _answer_body(fake_openai)
    assert {key: body[key] for key in LLAMA_CPP | VLLM} == LLAMA_CPP | VLLM
    refused = api.post("/v1/chat/completions", json={"model": "rag:docs", "messages": messages,
                                                     "extra_body": LLAMA_CPP})  # fmt: skip
    assert refused.status_code == 400
    assert "send its keys at the top level" in refused.json()["error"]["message"]


def test_rag_chat_completions_hold_the_keys_they_pass_on_to_extra_bodys_limits(
    api: TestClient, fake_openai: FakeOpenAI
) -> None:
    """What a rag: model passes on unchanged is held to the limits of extra_body: 64 keys, 16 KB, no NaN."""
    messages: Any = [{"role": "user", "content": "How does redis persist data?"}]
    before = len(fake_openai.chat_requests())
    many = {f"x_{n}": n for n in range(65)}
    large = {"guided_json": {"enum": ["word " * 20] * 200}}
    for extra, said in ((many, "65 keys"), (large, "bytes as JSON")):
        refused = api.post("/v1/chat/completions", json={"model": "rag:docs", "messages": messages, **extra})
        assert refused.status_code == 400 and said in refused.json()["error"]["message"], refused.text
    raw = json.dumps({"model": "rag:docs", "messages": messages, "min_p": float("nan")})  # NaN, as Python writes it
    refused = api.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert refused.status_code == 400 and "NaN" in refused.json()["error"]["message"], refused.text
    assert len(fake_openai.chat_requests()) == before  # nothing reached the chat model


EVERY_OPTION = [
    "--temperature", "0.3", "--max-tokens", "200", "--top-p", "0.9", "--top-k", "40", "--stop", "END",
    "--stop", "###", "--frequency-penalty", "0.5", "--presence-penalty", "-0.5", "--repetition-penalty", "1.2",
    "--seed", "7", "--extra-body", json.dumps(LLAMA_CPP | VLLM),
]  # fmt: skip
SENT = {"temperature": 0.3, "max_tokens": 200, "top_p": 0.9, "top_k": 40, "stop": ["END", "###"],
        "frequency_penalty": 0.5, "presence_penalty": -0.5, "repetition_penalty": 1.2, "seed": 7}  # fmt: skip


def _cli(settings: Settings, fake: FakeOpenAI, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "searchsvc", "ask", "How does redis persist data?", "-c", "docs", *args]
    env = cli_env(settings, fake, SEARCHSVC_CHAT_MODEL="llama", SEARCHSVC_ANSWER_MIN_SCORE="-1")  # as above
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("streamed", [False, True])
def test_every_cli_generation_option_reaches_the_request(
    settings: Settings, fake_openai: FakeOpenAI, streamed: bool
) -> None:
    done = _cli(settings, fake_openai, *EVERY_OPTION, *([] if streamed else ["--json"]))
    assert done.returncode == 0, done.stderr
    body = _answer_body(fake_openai)
    assert {key: body.get(key) for key in SENT} == SENT
    assert {key: body.get(key) for key in LLAMA_CPP | VLLM} == LLAMA_CPP | VLLM
    assert body.get("stream", False) is streamed
    if not streamed:
        assert json.loads(done.stdout)["mode"] == "generative"


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--extra-body", "{repeat_penalty: 1.1}"], "Invalid value for '--extra-body': not JSON"),
        (["--extra-body", "[1]"], "Invalid value for '--extra-body': extra_body must be a JSON object"),
        (["--extra-body", '{"model": "x"}'], "extra_body cannot hold 'model': searchsvc sets it itself"),
        (["--extra-body", '{"top_k": 5}'], "it has its own field; send top_k instead"),
        (["--top-p", "1.5"], "Invalid value for '--top-p'"),
        (["--temperature", "-1"], "Invalid value for '--temperature'"),
        (["--max-tokens", "0"], "Invalid value for '--max-tokens'"),
        (["--repetition-penalty", "0"], "Invalid value for '--repetition-penalty': Input should be greater than 0"),
        (["--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"],
         "Invalid value for '--stop': stop takes at most 4 sequences"),
    ],
)  # fmt: skip
def test_cli_options_out_of_bounds_are_one_line_usage_errors(
    settings: Settings, fake_openai: FakeOpenAI, args: list[str], expected: str
) -> None:
    done = _cli(settings, fake_openai, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr and "searchsvc ask --help" in done.stderr
    assert fake_openai.chat_requests() == []


def test_the_cli_help_explains_every_generation_option(settings: Settings, fake_openai: FakeOpenAI) -> None:
    done = _cli(settings, fake_openai, "--help")
    assert done.returncode == 0
    for option in ("--temperature", "--max-tokens", "--top-p", "--top-k", "--stop", "--frequency-penalty",
                   "--presence-penalty", "--repetition-penalty", "--seed", "--extra-body"):  # fmt: skip
        assert option in done.stdout
    assert "repeat_penalty" in done.stdout and "0<=x<=1" in done.stdout
