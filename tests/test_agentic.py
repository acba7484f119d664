"""Agentic answers: the chat model (the fake OpenAI server, scripted) searches and reads through tools over a
real `searchsvc serve`, streamed and not, and through `searchsvc ask --agentic`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_chat import ToolCalls
from tests.fake_openai import FakeOpenAI
from tests.servers import serving

pytestmark = pytest.mark.tools

DOCUMENTS = [
    {"id": "quokka", "title": "Quokkas", "text": "Quokkas are small marsupials that live on Rottnest Island."},
    {"id": "redis", "title": "Redis", "text": "Redis keeps its keys in memory and writes snapshots to disk."},
    {"id": "zstd", "title": "Zstandard", "text": "Zstandard is a fast lossless compression algorithm."},
]
ANSWER = "Redis writes snapshots to disk [2]. Quokkas do not [9]."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[tuple[str, dict[str, str]]]:
    settings = remote_settings(tmp_path_factory.mktemp("agentic"), fake, embedding_model=MODEL)
    env = cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="1")
    with serving(env) as url:
        native = url.removesuffix("/v1")
        httpx.post(f"{native}/v1/collections/notes/documents", json={"documents": DOCUMENTS}, timeout=60)
        yield native, env


def tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["role"] == "tool"]


def two_searches(messages: list[dict[str, Any]]) -> Any:
    """Search for quokkas (one passage), then for Redis (one passage, source 2), then answer citing it. The
    first call comes after a preamble, as Claude writes them."""
    done = len(tool_messages(messages))
    if done == 0:
        return ToolCalls([("search", {"query": "quokkas island", "k": 1})], preamble="Let me search for that.")
    if done == 1:
        return ToolCalls([("search", {"query": "Redis snapshots disk", "k": 1})])
    return ANSWER


@pytest.fixture
def scripted(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake.requests.clear()
    fake.chat_reply = two_searches
    yield fake
    fake.chat_reply, fake.reply_without_tools = "This is the answer [1].", "From what I found [1]."


def ask(native: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{native}/v1/ask", json={"collection": "notes", "agentic": True, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def events(native: str, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    payload = {"collection": "notes", "agentic": True, "stream": True, **body}
    with httpx.stream("POST", f"{native}/v1/ask", json=payload, timeout=60) as response:
        text = response.read().decode()
    found = re.findall(r"event: (\w+)\ndata: (.*)\n\n", text)
    return [(name, json.loads(data)) for name, data in found]


def test_a_source_found_only_by_the_second_search_is_cited(
    served: tuple[str, dict[str, str]], scripted: FakeOpenAI
) -> None:
    answer = ask(served[0], question="Does Redis write to disk?", k=3)
    assert answer["answer"] == "Redis writes snapshots to disk [2]. Quokkas do not."
    assert answer["invalid_citations"] == 1 and answer["answered"] is True
    assert [(c["number"], c["document_key"]) for c in answer["citations"]] == [(2, "redis")]
    assert [s["document_key"] for s in answer["sources"]] == ["quokka", "redis"]
    assert answer["agent"] == {"steps": 2, "stopped_by": "answer"}
    assert answer["usage"] == {"prompt_tokens": 300, "completion_tokens": 20 + len(ANSWER.split()),
                               "total_tokens": 320 + len(ANSWER.split())}  # fmt: skip
    first, second, third = scripted.chat_requests()
    assert [t["function"]["name"] for t in first.body["tools"]] == ["search", "read"]
    assert first.body["tool_choice"] == "auto" and "tool_calls" in second.body["messages"][-2]
    assert second.body["messages"][-2]["content"] == "Let me search for that."  # the preamble stays the model's words
    shown = tool_messages(third.body["messages"])
    asked = [c["id"] for m in third.body["messages"] if m.get("tool_calls") for c in m["tool_calls"]]
    assert [m["tool_call_id"] for m in shown] == asked and len(asked) == 2
    assert 'id="2" document_id=' in shown[1]["content"] and "snapshots to disk" in shown[1]["content"]


def test_streamed_tool_calls_and_results_come_before_the_answer(
    served: tuple[str, dict[str, str]], scripted: FakeOpenAI
) -> None:
    got = events(served[0], question="Does Redis write to disk?")
    names = [name for name, _ in got]
    assert names[:5] == ["tool_call", "tool_result", "tool_call", "tool_result", "sources"]
    assert names[-1] == "done" and set(names[5:-1]) == {"delta"}
    assert json.loads(got[2][1]["arguments"]) == {"query": "Redis snapshots disk", "k": 1}  # streamed in pieces
    assert [s["number"] for s in got[3][1]["sources"]] == [2]
    assert (
        "".join(data["text"] for name, data in got if name == "delta")
        == "Redis writes snapshots to disk [2]. Quokkas do not."
    )
    done = got[-1][1]
    assert done["agent"] == {"steps": 2, "stopped_by": "answer"} and done["citations"][0]["document_key"] == "redis"


def test_read_widens_a_passage_and_bad_calls_are_answered_with_the_reason(
    served: tuple[str, dict[str, str]], scripted: FakeOpenAI
) -> None:
    def script(messages: list[dict[str, Any]]) -> Any:
        shown = tool_messages(messages)
        if not shown:
            return ToolCalls([("search", {"query": "quokkas island", "k": 1}), ("read", "{not json")])
        if len(shown) == 2:
            document = re.search(r'document_id="(\d+)"', shown[0]["content"])
            assert document is not None
            return ToolCalls(
                [("read", {"document_id": int(document.group(1)), "end": 20}), ("read", {"document_id": 10**6})]
            )
        return "Quokkas live on Rottnest Island [1]."

    scripted.chat_reply = script
    got = events(served[0], question="Where do quokkas live?")
    results = [data for name, data in got if name == "tool_result"]
    assert [r["name"] for r in results] == ["search", "read", "read", "read"]
    assert "not valid JSON" in results[1]["error"] and "no text between" in results[3]["error"]
    assert [s["number"] for s in results[2]["sources"]] == [1]  # the chunk search found keeps its number
    assert got[-1][1]["answered"] is True and got[-1][1]["citations"][0]["document_key"] == "quokka"


def test_a_model_that_keeps_calling_tools_is_stopped_at_the_bound(
    served: tuple[str, dict[str, str]], scripted: FakeOpenAI
) -> None:
    scripted.chat_reply = lambda messages: ToolCalls([("search", {"query": f"quokkas {len(messages)}"})])
    forced = ask(served[0], question="Where do quokkas live?", max_steps=2)
    assert forced["agent"] == {"steps": 2, "stopped_by": "step_limit"} and forced["answer"] == "From what I found [1]."
    assert [r.body["tool_choice"] for r in scripted.chat_requests()] == ["auto", "auto", "none"]
    scripted.reply_without_tools = None  # ignores tool_choice "none" too
    stuck = ask(served[0], question="Where do quokkas live?", max_steps=1)
    assert stuck["answered"] is False and stuck["answer"].startswith("I could not finish")
    assert stuck["agent"] == {"steps": 1, "stopped_by": "step_limit"} and stuck["usage"]["total_tokens"] == 220


def test_agentic_requests_are_checked(served: tuple[str, dict[str, str]]) -> None:
    native = served[0]
    for body, says in [({"models": ["a", "b"]}, "one model"), ({"agentic": False, "max_steps": 2}, "agentic: true"),
                       ({"max_steps": 17}, "less than or equal to 16")]:  # fmt: skip
        response = httpx.post(f"{native}/v1/ask", json={"question": "q", "agentic": True, **body}, timeout=30)
        assert response.status_code == 422 and says in response.text, response.text


def test_the_cli_shows_each_tool_call_then_the_answer(
    served: tuple[str, dict[str, str]], scripted: FakeOpenAI, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "searchsvc", "ask", "Does Redis write to disk?", "-c", "notes", "--agentic"]
    done = subprocess.run(command, env=served[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '→ search({"query": "quokkas island", "k": 1})' in done.stderr and "← search: sources [2]" in done.stderr
    assert done.stdout.startswith("Redis writes snapshots to disk [2].")


def test_without_a_chat_api_agentic_is_a_400_that_says_what_to_set(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from searchsvc.api.app import create_app
    from tests.conftest import make_settings

    with TestClient(create_app(make_settings(tmp_path))) as api:
        api.post("/v1/collections/notes/documents", json={"documents": DOCUMENTS[:1]}).raise_for_status()
        refused = api.post(
            "/v1/ask", json={"question": "Where do quokkas live?", "collection": "notes", "agentic": True}
        )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "agentic"
    assert "AIMLAPI_API_KEY" in refused.json()["error"]["message"]


@pytest.fixture(scope="module")
def anthropic_served(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[str]:
    settings = remote_settings(tmp_path_factory.mktemp("agentic-anthropic"), fake, embedding_model=MODEL)
    with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="1", SEARCHSVC_CHAT_FORMAT="anthropic")) as url:
        native = url.removesuffix("/v1")
        httpx.post(f"{native}/v1/collections/notes/documents", json={"documents": DOCUMENTS}, timeout=60)
        yield native


def test_a_model_speaking_anthropics_format_searches_twice_and_cites_the_second(
    anthropic_served: str, scripted: FakeOpenAI
) -> None:
    answer = ask(anthropic_served, question="Does Redis write to disk?")
    assert [(c["number"], c["document_key"]) for c in answer["citations"]] == [(2, "redis")]
    assert answer["agent"] == {"steps": 2, "stopped_by": "answer"}
    assert answer["usage"] == {"prompt_tokens": 300, "completion_tokens": 30, "total_tokens": 330}
    anthropic = [r for r in scripted.requests if r.path.endswith("/messages")]
    assert anthropic[0].headers["anthropic-version"] == "2023-06-01" and anthropic[0].headers["x-api-key"]
    sent = [r.body for r in anthropic]
    assert len(sent) == 3 and all(b["max_tokens"] == 1024 and b["system"].startswith("You answer") for b in sent)
    assert sent[0]["tools"][0]["name"] == "search" and "input_schema" in sent[0]["tools"][0]
    assert sent[0]["tool_choice"] == {"type": "auto"}
    last_turn = sent[2]["messages"][-1]
    assert last_turn["role"] == "user" and [b["type"] for b in last_turn["content"]] == ["tool_result"]
    assert sent[2]["messages"][-2]["content"][0]["type"] == "tool_use"
    got = events(anthropic_served, question="Does Redis write to disk?")
    assert [name for name, _ in got][:5] == ["tool_call", "tool_result", "tool_call", "tool_result", "sources"]
    assert json.loads(got[2][1]["arguments"]) == {"query": "Redis snapshots disk", "k": 1}  # streamed in pieces
    assert "".join(d["text"] for n, d in got if n == "delta") == "Redis writes snapshots to disk [2]. Quokkas do not."
    scripted.chat_reply = "Redis writes snapshots to disk [1]."
    plain = httpx.post(f"{anthropic_served}/v1/ask", json={"question": "Redis snapshots", "collection": "notes",
                                                           "min_score": -1}, timeout=60).json()  # fmt: skip
    assert plain["answer"] == "Redis writes snapshots to disk [1]." and plain["usage"]["prompt_tokens"] == 100


def test_the_token_budget_binds_when_the_server_streams_without_usage(tmp_path: Path, fake: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake, embedding_model=MODEL)
    env = cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="1", SEARCHSVC_AGENT_TOKEN_BUDGET="1000")
    fake.chat_reply = lambda messages: ToolCalls([("search", {"query": f"quokkas {len(messages)}"})])
    fake.refuse_stream_options = True  # so no usage comes: the calls are counted here instead
    try:
        with serving(env) as url:
            native = url.removesuffix("/v1")
            httpx.post(f"{native}/v1/collections/notes/documents", json={"documents": DOCUMENTS}, timeout=60)
            got = events(native, question="Where do quokkas live?", max_steps=16)
    finally:
        fake.refuse_stream_options, fake.chat_reply = False, "This is the answer [1]."
    done = dict(got)["done"]
    assert done["agent"]["stopped_by"] == "token_budget" and done["agent"]["usage_estimated"] is True
    assert 1 <= done["agent"]["steps"] < 16 and done["usage"]["total_tokens"] >= 1000
