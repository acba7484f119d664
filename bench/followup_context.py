"""A three-turn follow-up conversation against the tests' fake chat model with a 2,048-token context.

    python bench/followup_context.py

The fake answers OpenAI's 400 ``context_length_exceeded`` past its context, as llama.cpp and vLLM do.
sample_data/markdown is ingested through the fake's embeddings, then three questions go to POST /v1/ask at
k=20 in one conversation: once with ``SEARCHSVC_CHAT_CONTEXT_TOKENS={"*": 2048}`` and once without it (the
baseline). Printed per run: each turn's status and sources, every chat prompt's size in tokens as the fake
counted it, and each follow-up rewrite's ``max_tokens`` and prompt length. It measures what
tests/test_chat_context.py asserts; nothing here is timed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchsvc.answering.prompt import REWRITE_PROMPT  # noqa: E402
from searchsvc.api.app import create_app  # noqa: E402
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402

CONTEXT = 2048
QUESTIONS = ("How does redis persist data?", "And how often?", "What about the log file?")


def reply(messages: list[dict[str, str]]) -> str:
    if messages[0]["content"] == REWRITE_PROMPT:
        return "redis persistence to disk with snapshots"
    return "Redis writes snapshots [1]. " * 20


def conversation(folder: Path, **overrides: Any) -> None:
    with FakeOpenAI() as fake:
        fake.chat_context_tokens, fake.chat_reply = CONTEXT, reply
        settings = remote_settings(folder, fake, embedding_model=MODEL, collection="docs", max_retries=0, **overrides)
        run_ingest(settings, SAMPLE_DATA / "markdown")
        with TestClient(create_app(settings)) as api:
            for question in QUESTIONS:
                ask = {"question": question, "k": 20, "conversation_id": "c", "min_score": -1}
                answer = api.post("/v1/ask", json=ask)
                body = answer.json()
                sources = len(body.get("sources", [])) if answer.status_code == 200 else "-"
                print(f"  {answer.status_code}  sources {sources}  {question}")
        print(f"  chat prompts (tokens): {fake.chat_prompt_tokens}")
        for request in fake.chat_requests():
            if request.body["messages"][0]["content"] == REWRITE_PROMPT:
                size = sum(len(m["content"]) for m in request.body["messages"])
                print(f"  rewrite: max_tokens {request.body.get('max_tokens')}, prompt {size} characters")


def main() -> None:
    runs = [("with SEARCHSVC_CHAT_CONTEXT_TOKENS={'*': 2048}", {"chat_context_tokens": {"*": CONTEXT}}),
            ("without it (baseline)", {})]  # fmt: skip
    for label, overrides in runs:
        print(label)
        with tempfile.TemporaryDirectory() as folder:
            conversation(Path(folder), **overrides)


if __name__ == "__main__":
    main()
