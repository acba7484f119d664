"""Prompts that fit the chat model's context (issue 19, items 7 and 8), against the fake chat model with a
2,048-token context (it answers OpenAI's 400 ``context_length_exceeded`` past it, as llama.cpp and vLLM do):
the sources follow the context length, a follow-up's rewrite sees a bounded thread, is capped, and never
takes the user's question's place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from searchsvc.answering.prompt import REWRITE_PROMPT
from searchsvc.api.app import create_app
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

CONTEXT = 2048


def _api(tmp_path: Path, fake: FakeOpenAI, **overrides: Any) -> TestClient:
    settings = remote_settings(tmp_path, fake, embedding_model=MODEL, collection="docs", max_retries=0, **overrides)
    run_ingest(settings, SAMPLE_DATA / "markdown")
    return TestClient(create_app(settings))


def _reply(long_rewrite: bool = False) -> Any:
    def reply(messages: list[dict[str, str]]) -> str:
        if messages[0]["content"] == REWRITE_PROMPT:
            return "redis " * 3000 if long_rewrite else "redis persistence to disk with snapshots"
        return "Redis writes snapshots [1]. " * 20

    return reply


def test_a_follow_up_conversation_fits_a_2048_token_context(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_context_tokens, fake_openai.chat_reply = CONTEXT, _reply()
    with _api(tmp_path, fake_openai, chat_context_tokens={"*": CONTEXT}) as api:
        for question in ("How does redis persist data?", "And how often?", "What about the log file?"):
            answer = api.post("/v1/ask", json={"question": question, "k": 20, "conversation_id": "c", "min_score": -1})
            assert answer.status_code == 200, answer.text
    assert max(fake_openai.chat_prompt_tokens) <= CONTEXT - 512  # the answer's room was kept
    rewrites = [r.body for r in fake_openai.chat_requests() if r.body["messages"][0]["content"] == REWRITE_PROMPT]
    assert len(rewrites) == 2 and all(body["max_tokens"] == 64 for body in rewrites)
    last_prompt = fake_openai.chat_requests()[-1].body["messages"][-1]["content"]
    assert "What about the log file?" in last_prompt  # the user's question, with its standalone form beside it


def test_without_the_context_length_the_same_question_overflows(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_context_tokens, fake_openai.chat_reply = CONTEXT, _reply()
    with _api(tmp_path, fake_openai) as api:
        answer = api.post("/v1/ask", json={"question": "How does redis persist data?", "k": 20, "min_score": -1})
    assert answer.status_code == 502 and "maximum context length" in answer.text


def test_a_runaway_rewrite_never_replaces_the_question(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = _reply(long_rewrite=True)
    with _api(tmp_path, fake_openai) as api:
        api.post("/v1/ask", json={"question": "How does redis persist data?", "conversation_id": "c", "min_score": -1})
        answer = api.post("/v1/ask", json={"question": "And how often?", "conversation_id": "c", "min_score": -1})
    assert answer.status_code == 200, answer.text
    query = answer.json()["standalone_query"]
    assert query == "How does redis persist data? And how often?"  # the thread's last question, joined


def test_a_long_thread_is_cut_to_its_newest_turns_for_the_rewrite(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = _reply()
    long_answer = "Redis persistence explained at length. " * 400
    history = [m for n in range(12) for m in ({"role": "user", "content": f"question {n}"},
                                              {"role": "assistant", "content": long_answer})]  # fmt: skip
    with _api(tmp_path, fake_openai, rewrite_history_tokens=1000) as api:
        messages = [*history, {"role": "user", "content": "And how often?"}]  # the thread, sent whole
        answer = api.post("/v1/chat/completions", json={"model": "rag:docs", "messages": messages})
    assert answer.status_code == 200, answer.text
    rewrite = next(r.body for r in fake_openai.chat_requests() if r.body["messages"][0]["content"] == REWRITE_PROMPT)
    shown = rewrite["messages"][1:-1]
    assert 2 <= len(shown) < len(history) and shown[-1]["role"] == "assistant"
    assert shown[-2]["content"] == "question 11"  # the newest turns, in order
    assert sum(len(m["content"]) for m in shown) < 6000


def test_an_answer_room_that_cannot_fit_is_a_clear_400(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    with _api(tmp_path, fake_openai, chat_context_tokens={"*": CONTEXT}) as api:
        answer = api.post("/v1/ask", json={"question": "redis", "max_tokens": 1900, "min_score": -1})
    assert answer.status_code == 400 and "SEARCHSVC_CHAT_CONTEXT_TOKENS" in answer.text
