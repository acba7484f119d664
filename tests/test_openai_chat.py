"""``POST /v1/chat/completions`` and ``GET /v1/models``, driven by the official openai SDK against a real
`searchsvc serve`: extractive without a chat API, generative with the fake OpenAI server behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import MODEL, cli_env, make_settings, remote_settings
from tests.fake_openai import FakeOpenAI, Fault
from tests.servers import serving

pytestmark = pytest.mark.openai_compat

ANIMALS = [
    {
        "id": "quokka",
        "title": "Quokkas",
        "text": "Quokkas are small marsupials. Quokkas live on Rottnest Island "
        "near Perth, where they graze on grasses at night.",
    },
    {
        "id": "redis",
        "title": "Redis",
        "text": "Redis is an in-memory data store. Redis keeps keys in memory and writes snapshots to disk.",
    },
]
REWRITTEN = "Where do quokkas live?"


def _upsert(base_url: str, collection: str, documents: list[dict[str, Any]]) -> None:
    native = base_url.removesuffix("/v1")
    response = httpx.post(f"{native}/v1/collections/{collection}/documents", json={"documents": documents}, timeout=60)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def extractive_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("chat-extractive"))
    with serving(cli_env(settings)) as url:
        _upsert(url, "animals", ANIMALS)
        yield url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def generative_url(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("chat-generative")
    settings = remote_settings(tmp, fake, embedding_model=MODEL)
    with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="1")) as url:
        _upsert(url, "animals", ANIMALS)
        yield url


@pytest.fixture
def answering(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake writes the standalone query when asked to rewrite, else an answer citing [1] (and [7])."""

    def reply(messages: list[dict[str, str]]) -> str:
        if messages[0]["content"].startswith("Rewrite"):
            return REWRITTEN
        return "Quokkas live on Rottnest Island [1]. They are marsupials [1][7]."

    fake.requests.clear()
    fake.chat_reply = reply
    yield fake
    fake.chat_reply = "This is the answer [1]."


def client_for(url: str) -> OpenAI:
    return OpenAI(base_url=url, api_key="unused", max_retries=0)


def test_models_list_one_rag_model_per_collection(extractive_url: str) -> None:
    models = {m.id: m for m in client_for(extractive_url).models.list()}
    assert models["rag:animals"].owned_by == "searchsvc"
    assert models["rag:animals"].model_extra == {"provider": "rag", "type": "rag-extractive", "dimension": None}
    assert "all-MiniLM-L6-v2" in models
    client = client_for(extractive_url)
    assert client.models.retrieve("rag:animals").model_extra["type"] == "rag-extractive"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("rag:plants")
    assert missing.value.body["code"] == "model_not_found"


def test_without_a_chat_api_a_rag_model_answers_extractively_with_file_citations(extractive_url: str) -> None:
    completion = client_for(extractive_url).chat.completions.create(
        model="rag:animals", messages=[{"role": "user", "content": "Where do quokkas live?"}]
    )
    assert completion.object == "chat.completion" and completion.model == "rag:animals"
    message = completion.choices[0].message
    assert "Rottnest Island" in message.content and completion.choices[0].finish_reason == "stop"
    details = completion.model_extra["searchsvc"]
    assert details["mode"] == "extractive" and details["answered"] is True
    assert details["sources"][0]["document_key"] == "quokka"
    cited = [a for a in message.model_dump(exclude_none=True)["annotations"] if a["type"] == "file_citation"]
    assert cited and all(message.content[c["file_citation"]["start_index"]] == "[" for c in cited)
    first = cited[0]["file_citation"]
    assert (first["file_id"], first["source"]) == ("quokka", 1) and first["quote"] in ANIMALS[0]["text"]
    assert completion.usage is not None and completion.usage.total_tokens == 0


def test_a_streamed_answer_is_the_same_answer_in_chunks_then_usage(extractive_url: str) -> None:
    client = client_for(extractive_url)
    messages: Any = [{"role": "user", "content": "Where do quokkas live?"}]
    whole = client.chat.completions.create(model="rag:animals", messages=messages)
    stream = client.chat.completions.create(
        model="rag:animals", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model_extra["searchsvc"]["sources"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    last_choice = [c for c in chunks if c.choices][-1]
    assert last_choice.choices[0].finish_reason == "stop"
    whole_notes = whole.choices[0].message.model_dump(exclude_none=True)["annotations"]
    assert last_choice.choices[0].delta.model_extra["annotations"] == whole_notes
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_what_nothing_supports_is_answered_i_do_not_know(extractive_url: str) -> None:
    completion = client_for(extractive_url).chat.completions.create(
        model="rag:animals", messages=[{"role": "user", "content": "What is the capital of Mongolia?"}]
    )
    assert completion.model_extra["searchsvc"]["answered"] is False
    assert completion.choices[0].message.content.startswith("I don't know")


def test_requests_a_rag_model_cannot_honour_are_400s_naming_the_field(extractive_url: str) -> None:
    client = client_for(extractive_url)
    question: Any = [{"role": "user", "content": "Where do quokkas live?"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"messages": question, "tools": [tool]}, "tools"),
        ({"messages": question, "n": 2}, "n"),
        ({"messages": question, "top_logprobs": 2}, "top_logprobs"),  # without logprobs: true
        ({"messages": question, "response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [*question, {"role": "assistant", "content": "On an island."}]}, "messages[1]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content",
        ),
        ({"messages": question, "extra_body": {"searchsvc": {"chat_model": "gpt-4o"}}}, "searchsvc.chat_model"),
        ({"messages": question, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}, *question]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x" * 70_000}, *question]}, "messages[0].content"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="rag:animals", **body)
        assert refused.value.body["param"] == param, refused.value.body
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="rag:plants", messages=question)
    assert missing.value.body["code"] == "model_not_found" and "GET /v1/models" in missing.value.body["message"]
    with pytest.raises(openai.NotFoundError) as no_api:
        client.chat.completions.create(model="gpt-4o-mini", messages=question)
    assert "no chat API is configured" in no_api.value.body["message"]


def test_a_follow_up_is_rewritten_with_the_thread_and_answered_with_its_parameters(
    generative_url: str, answering: FakeOpenAI
) -> None:
    completion = client_for(generative_url).chat.completions.create(
        model="rag:animals",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "Tell me about quokkas."},
            {"role": "assistant", "content": "Quokkas are marsupials [1]."},
            {"role": "user", "content": "Where do they live?"},
        ],
        temperature=0.2,
        max_completion_tokens=200,
        seed=7,
        extra_body={"top_k": 40, "repetition_penalty": 1.1, "searchsvc": {"k": 2, "chat_model": "gpt-4o"}},
    )
    rewrite, answer = answering.chat_requests()
    assert [m["content"] for m in rewrite.body["messages"][1:]] == [
        "Tell me about quokkas.", "Quokkas are marsupials [1].", "Where do they live?"
    ]  # fmt: skip
    assert answer.body["model"] == "gpt-4o" and answer.body["messages"][1]["content"] == "Answer in one sentence."
    assert REWRITTEN in answer.body["messages"][-1]["content"]
    sent = {k: answer.body.get(k) for k in ("temperature", "max_completion_tokens", "seed", "top_k")}
    assert sent == {"temperature": 0.2, "max_completion_tokens": 200, "seed": 7, "top_k": 40}
    assert answer.body["repetition_penalty"] == 1.1 and "searchsvc" not in answer.body
    details = completion.model_extra["searchsvc"]
    assert details["standalone_query"] == REWRITTEN and details["mode"] == "generative"
    assert details["invalid_citations"] == 1  # [7] named no source: removed from the text
    text = completion.choices[0].message.content
    assert text == "Quokkas live on Rottnest Island [1]. They are marsupials [1]."
    markers = [i for i in range(len(text)) if text.startswith("[1]", i)]
    notes = [a.model_dump(exclude_none=True)["file_citation"] for a in completion.choices[0].message.annotations]
    assert [(n["start_index"], n["end_index"], n["file_id"]) for n in notes] == [(i, i + 3, "quokka") for i in markers]
    completion_tokens = len(REWRITTEN.split()) + 10  # the fake counts words: the rewrite's and the answer's
    usage = completion.usage.model_dump(exclude_none=True)
    assert usage == {
        "prompt_tokens": 200,
        "completion_tokens": completion_tokens,
        "total_tokens": 200 + completion_tokens,
    }


def test_a_streamed_generative_answer_carries_the_providers_usage(generative_url: str, answering: FakeOpenAI) -> None:
    stream = client_for(generative_url).chat.completions.create(
        model="rag:animals",
        messages=[{"role": "user", "content": "Where do quokkas live?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Quokkas live on Rottnest Island [1]. They are marsupials [1]."
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 100


def test_an_answer_cut_by_the_provider_raises_in_the_sdk(generative_url: str, answering: FakeOpenAI) -> None:
    answering.queue(Fault("cut_stream", only="/chat/completions"))
    stream = client_for(generative_url).chat.completions.create(
        model="rag:animals", messages=[{"role": "user", "content": "Where do quokkas live?"}], stream=True
    )
    with pytest.raises(openai.APIError, match="cut"):
        list(stream)


def test_other_models_are_the_chat_apis_passed_on_as_sent(generative_url: str, answering: FakeOpenAI) -> None:
    client = client_for(generative_url)
    answering.chat_reply = "Hello there."
    messages: Any = [{"role": "user", "content": "Say hello."}]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages, logprobs=True, top_logprobs=2)
    assert plain.choices[0].message.content == "Hello there." and plain.model == "gpt-4o-mini"
    assert answering.chat_requests()[-1].body == {
        "model": "gpt-4o-mini", "messages": messages, "logprobs": True, "top_logprobs": 2
    }  # fmt: skip
    streamed = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Hello there."
    assert {m.id for m in client.models.list()} >= {"gpt-4o-mini", "rag:animals"}


def test_a_file_uploaded_to_a_vector_store_is_cited_by_its_file_id(extractive_url: str, tmp_path: Path) -> None:
    client = client_for(extractive_url)
    note = tmp_path / "wombats.md"
    note.write_text("# Wombats\n\nWombats dig long burrows with their strong claws and rest in them by day.\n")
    uploaded = client.files.create(file=note.open("rb"), purpose="assistants")
    store = client.vector_stores.create(name="burrowers")
    assert client.vector_stores.files.create_and_poll(file_id=uploaded.id, vector_store_id=store.id).status == (
        "completed"
    )
    started = time.monotonic()
    completion = client.chat.completions.create(
        model=f"rag:{store.id}", messages=[{"role": "user", "content": "Where do wombats rest by day?"}]
    )
    assert time.monotonic() - started < 30
    citation = completion.choices[0].message.model_dump(exclude_none=True)["annotations"][0]["file_citation"]
    assert (citation["file_id"], citation["filename"]) == (uploaded.id, "wombats.md")


def test_rewrite_query_asks_the_chat_model_and_says_what_was_searched(
    generative_url: str, extractive_url: str, answering: FakeOpenAI
) -> None:
    asked = "could you please tell me where those quokka animals live"
    page = client_for(generative_url).vector_stores.search("animals", query=asked, rewrite_query=True)
    assert page.search_query == [REWRITTEN] and page.data[0].file_id == "quokka"
    assert answering.chat_requests()[-1].body["messages"][-1]["content"] == asked
    as_given = client_for(extractive_url).vector_stores.search("animals", query=asked, rewrite_query=True)
    assert as_given.search_query == [asked]  # no chat API: searched as given, and said so


def test_a_sentence_two_sources_share_is_quoted_once_citing_both(local_provider: Any) -> None:
    from searchsvc.answering import AnswerSource
    from searchsvc.answering.extractive import extract
    from searchsvc.search import SearchHit

    shared = "Quokkas live on Rottnest Island near Perth."
    texts = [shared + " They graze at night.", "Island notes. " + shared, "Redis keeps keys in memory."]
    sources = [
        AnswerSource(n, SearchHit(n, 1.0, n, f"d{n}", None, None, [], 0, len(t), None, None, None, t))
        for n, t in enumerate(texts, start=1)
    ]
    found = extract(local_provider, "Where do quokkas live?", sources)
    assert found is not None and found.text.count("Rottnest") == 1
    assert found.text.startswith("Quokkas live on Rottnest Island near Perth [1][2].") and found.cited[:2] == [1, 2]


def test_a_provider_that_refuses_before_the_first_word_is_an_http_error_not_a_cut_stream(
    generative_url: str, answering: FakeOpenAI
) -> None:
    client = client_for(generative_url)
    question: Any = [{"role": "user", "content": "Where do quokkas live?"}]
    for stream in (False, True):
        answering.queue(Fault("status", status=400, only="/chat/completions"))
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="rag:animals", messages=question, stream=stream)
        assert refused.value.body["code"] == "provider_refused", refused.value.body
    answering.queue(Fault("status", status=404, only="/chat/completions"))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o-mini", messages=question, stream=True)


def test_a_failed_rewrite_retrieves_with_the_thread_and_still_answers(
    generative_url: str, answering: FakeOpenAI
) -> None:
    answering.queue(*[Fault("status", status=500, only="/chat/completions")] * 2)  # the rewrite and its retry
    completion = client_for(generative_url).chat.completions.create(
        model="rag:animals",
        messages=[
            {"role": "user", "content": "Tell me about quokkas."},
            {"role": "assistant", "content": "Quokkas are marsupials [1]."},
            {"role": "user", "content": "Where do they live?"},
        ],
    )
    details = completion.model_extra["searchsvc"]
    assert details["standalone_query"] == "Tell me about quokkas. Where do they live?" and details["answered"]
    assert completion.choices[0].message.content.startswith("Quokkas live on Rottnest Island [1].")


def test_an_answer_cut_at_max_tokens_finishes_with_length(generative_url: str, answering: FakeOpenAI) -> None:
    client = client_for(generative_url)
    question: Any = [{"role": "user", "content": "Where do quokkas live?"}]
    cut = client.chat.completions.create(model="rag:animals", messages=question, max_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content == "Quokkas live on"
    chunks = list(client.chat.completions.create(model="rag:animals", messages=question, max_tokens=3, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert client.models.retrieve("rag:animals").model_extra["type"] == "rag-generative"
