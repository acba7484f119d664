"""Log probabilities relayed from the chat model (the fake OpenAI server makes them up per word): on
``/v1/ask`` (whole and streamed), on ``rag:`` chat completions, and on the Responses API with
``include: ["message.output_text.logprobs"]``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_openai import FakeOpenAI
from tests.servers import serving

pytestmark = pytest.mark.openai_compat
DOCUMENTS = [{"id": "wombats", "title": "Wombats",
              "text": "Wombats dig long burrows with their strong claws and rest in them by day."}]  # fmt: skip
ANSWER = "Wombats rest in burrows [1]."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path_factory.mktemp("logprobs"), fake, embedding_model=MODEL)
        with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="0")) as url:
            native = url.removesuffix("/v1")
            created = httpx.post(f"{native}/v1/collections/notes/documents", json={"documents": DOCUMENTS}, timeout=60)
            assert created.status_code == 200, created.text
            fake.chat_reply = ANSWER
            yield native, fake


def ask(native: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{native}/v1/ask", json={"question": "Where do wombats rest?", "collection": "notes",
                                                "min_score": -1, **body}, timeout=60)  # fmt: skip


def test_ask_relays_the_models_logprobs_whole_and_streamed(served: tuple[str, FakeOpenAI]) -> None:
    native, fake = served
    answer = ask(native, logprobs=True, top_logprobs=2).json()
    sent = fake.chat_requests()[-1].body
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert [t["token"] for t in answer["logprobs"]] == ANSWER.split(" ")
    assert answer["logprobs"][0]["logprob"] == -0.25 and len(answer["logprobs"][0]["top_logprobs"]) == 2
    assert "logprobs" not in ask(native).json() and "logprobs" not in fake.chat_requests()[-1].body
    payload = {"question": "Where do wombats rest?", "collection": "notes", "min_score": -1, "stream": True,
               "logprobs": True}  # fmt: skip
    with httpx.stream("POST", f"{native}/v1/ask", json=payload, timeout=60) as response:
        done = json.loads(re.findall(r"event: done\ndata: (.*)\n\n", response.read().decode())[0])
    assert "".join(t["token"] for t in done["logprobs"]) == ANSWER  # the streamed pieces, gathered
    for refused in ({"top_logprobs": 2}, {"logprobs": True, "agentic": True}, {"logprobs": True, "top_logprobs": 21}):
        assert ask(native, **refused).status_code in (400, 422), refused


def test_rag_chat_completions_and_responses_relay_logprobs(served: tuple[str, FakeOpenAI]) -> None:
    native, _ = served
    client = OpenAI(base_url=f"{native}/v1", api_key="unused", max_retries=0)
    question: Any = [{"role": "user", "content": "Where do wombats rest?"}]
    completion = client.chat.completions.create(model="rag:notes", messages=question, logprobs=True, top_logprobs=1)
    assert completion.choices[0].logprobs is not None and completion.choices[0].logprobs.content is not None
    assert [t.token for t in completion.choices[0].logprobs.content] == ANSWER.split(" ")
    chunks = list(client.chat.completions.create(model="rag:notes", messages=question, logprobs=True, stream=True))
    last = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert last.choices[0].logprobs is not None and len(last.choices[0].logprobs.content or []) == 5
    tools: Any = [{"type": "file_search", "vector_store_ids": ["notes"]}]
    response = client.responses.create(model="gpt-4o-mini", input="Where do wombats rest?", tools=tools,
                                       include=["message.output_text.logprobs"], top_logprobs=1)  # fmt: skip
    chances = response.output[1].content[0].logprobs
    assert chances is not None and [t.token for t in chances] == ANSWER.split(" ")
    assert chances[0].top_logprobs[0].token == "Wombats~0"

    events = list(client.responses.create(model="gpt-4o-mini", input="Where do wombats rest?", tools=tools,
                                          include=["message.output_text.logprobs"], stream=True))  # fmt: skip
    done = next(e for e in events if e.type == "response.output_text.done")
    assert "".join(t.token for t in done.logprobs) == ANSWER  # streamed tokens, gathered
