"""``POST /v1/responses`` with the file_search tool, driven by the official openai SDK against a real
`searchsvc serve`: extractive without a chat API, generative with the fake OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.conftest import MODEL, cli_env, make_settings, remote_settings
from tests.fake_openai import FakeOpenAI, Fault
from tests.servers import serving

pytestmark = pytest.mark.tools
WOMBATS = "# Wombats\n\nWombats dig long burrows with their strong claws and rest in them by day.\n"


def base_url_of(client: OpenAI) -> str:
    return str(client.base_url).rstrip("/").removesuffix("/v1")


def store_with_a_file(client: OpenAI, tmp_path: Path) -> tuple[str, str]:
    note = tmp_path / "wombats.md"
    note.write_text(WOMBATS)
    uploaded = client.files.create(file=note.open("rb"), purpose="assistants")
    store = client.vector_stores.create(name="burrowers")
    added = client.vector_stores.files.create_and_poll(file_id=uploaded.id, vector_store_id=store.id)
    assert added.status == "completed"
    return store.id, uploaded.id


@pytest.fixture(scope="module")
def extractive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAI, str, str]]:
    tmp = tmp_path_factory.mktemp("responses")
    with serving(cli_env(make_settings(tmp))) as url:
        client = OpenAI(base_url=url, api_key="unused", max_retries=0)
        yield (client, *store_with_a_file(client, tmp))


def test_a_response_searches_the_store_and_cites_the_file(extractive: tuple[OpenAI, str, str]) -> None:
    client, store_id, file_id = extractive
    response = client.responses.create(
        model="gpt-4o-mini",
        input="Where do wombats rest by day?",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        include=["file_search_call.results"],
    )
    assert response.object == "response" and response.status == "completed"
    search, message = response.output
    assert search.type == "file_search_call" and search.queries == ["Where do wombats rest by day?"]
    assert search.results and search.results[0].file_id == file_id and 0 < search.results[0].score <= 1
    assert "burrows" in response.output_text and "[1]" in response.output_text
    note = message.content[0].annotations[0]
    assert (note.type, note.file_id, note.filename) == ("file_citation", file_id, "wombats.md")
    assert response.output_text[note.index : note.index + 3] == "[1]"
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}]
    raw = client.responses.with_raw_response.create(model="m", input="Where do wombats rest?", tools=tools)
    plain = Response.model_validate(raw.http_response.json())  # strictly, against the SDK's own types
    assert plain.output[0].results is None  # results only when included
    earlier = [o.model_dump() for o in plain.output]
    follow_up: Any = [{"role": "user", "content": "Where do wombats rest by day?"}, *earlier,
                      {"role": "user", "content": "What do they dig with?"}]  # fmt: skip
    again = client.responses.create(model="m", input=follow_up, tools=tools)  # an output passed back as input
    assert again.output[0].queries == ["Where do wombats rest by day? What do they dig with?"]


def test_a_streamed_response_sends_the_events_in_order(extractive: tuple[OpenAI, str, str]) -> None:
    client, store_id, _ = extractive
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}]
    events = list(client.responses.create(model="m", input="Where do wombats rest by day?", tools=tools, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.file_search_call.in_progress", "response.file_search_call.searching"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text and "response.output_text.annotation.added" in kinds


def test_what_is_not_offered_is_a_400_naming_the_field(extractive: tuple[OpenAI, str, str]) -> None:
    client, store_id, _ = extractive
    search: Any = {"type": "file_search", "vector_store_ids": [store_id]}
    function: Any = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tools": [search, function]}, "tools"),  # function tools need a chat model
        ({"tools": []}, "tools"),  # so does a plain response
        ({"tools": [search, {"type": "web_search"}]}, "tools[1].type"),
        ({"tools": [search, search]}, "tools[1]"),
        ({"tools": [{"type": "file_search", "vector_store_ids": [store_id, "other"]}]}, "tools[0].vector_store_ids"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["nope"]}]}, "tools[0].vector_store_ids"),
        ({"tools": [search], "previous_response_id": "resp_1", "conversation": "conv_1"}, "previous_response_id"),
        ({"tools": [search], "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input"),
        ({"tools": [search], "text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"tools": [search], "background": True}, "background"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(**{"model": "m", "input": "Where do wombats rest?", **body})
        assert refused.value.body["param"] == param, refused.value.body
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="Where?", tools=[search], previous_response_id="resp_1")


def test_several_vector_stores_are_searched_together(extractive: tuple[OpenAI, str, str], tmp_path: Path) -> None:
    client, store_id, file_id = extractive
    note = tmp_path / "platypus.md"
    note.write_text("# Platypus\n\nThe platypus lays eggs and hunts shrimp underwater with its bill.\n")
    uploaded = client.files.create(file=note.open("rb"), purpose="assistants")
    other = client.vector_stores.create(name="egg layers")
    added = client.vector_stores.files.create_and_poll(file_id=uploaded.id, vector_store_id=other.id)
    assert added.status == "completed"
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id, other.id]}]
    for question, found in (("What does the platypus hunt underwater?", uploaded.id),
                            ("Where do wombats rest by day?", file_id)):  # fmt: skip
        response = client.responses.create(model="m", input=question, tools=tools, include=["file_search_call.results"])
        assert response.output[0].results and response.output[0].results[0].file_id == found
        assert response.output[1].content[0].annotations[0].file_id == found
    both = "Which animal digs burrows with claws, and which one hunts shrimp with its bill?"
    firsts = [client.responses.create(model="m", input=both, include=["file_search_call.results"], tools=[
        {"type": "file_search", "vector_store_ids": ids, "max_num_results": 1}]).output[0].results[0].file_id
        for ids in ([store_id, other.id], [other.id, store_id])]  # fmt: skip
    assert firsts[0] == firsts[1]  # the best by meaning, whichever store is named first
    question, results = "What does the platypus hunt underwater?", ["file_search_call.results"]
    everything = client.responses.create(model="m", input=question, tools=tools, include=results).output[0].results
    assert everything
    for threshold in (0.5, 1.0):  # the top hit scores 0.999999 or 1.0 (rounding), so 1.0 may keep none
        strict: Any = [{**tools[0], "ranking_options": {"score_threshold": threshold}}]
        kept = client.responses.create(model="m", input=question, tools=strict, include=results).output[0].results
        assert [r.file_id for r in kept or []] == [r.file_id for r in everything if r.score >= threshold]
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(
            model="m", input="Where?", tools=[{**tools[0], "ranking_options": {"score_threshold": 2}}]
        )
    assert refused.value.body["param"] == "tools[0].ranking_options.score_threshold"


def test_a_stored_response_is_retrieved_listed_and_deleted(extractive: tuple[OpenAI, str, str]) -> None:
    client, store_id, _ = extractive
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}]
    first = client.responses.create(model="m", input="Where do wombats rest by day?", tools=tools)
    assert first.store is True and client.responses.retrieve(first.id).output_text == first.output_text
    follow = client.responses.create(model="m", input="What do they dig with?", tools=tools,
                                     previous_response_id=first.id)  # fmt: skip
    assert follow.previous_response_id == first.id
    assert follow.output[0].queries == ["Where do wombats rest by day? What do they dig with?"]
    items = client.responses.input_items.list(follow.id)
    assert [i.content[0].text for i in items.data] == ["What do they dig with?"] and items.data[0].id.startswith("msg_")
    unkept = client.responses.create(model="m", input="Where do wombats rest?", tools=tools, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="And?", tools=tools, previous_response_id=follow.id)


def test_a_generative_response_sees_the_instructions_and_the_earlier_turn(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path, fake, embedding_model=MODEL)
        with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="1")) as url:
            client = OpenAI(base_url=url, api_key="unused", max_retries=0)
            store_id, file_id = store_with_a_file(client, tmp_path)
            fake.chat_reply = lambda m: "Where do wombats rest?" if m[0]["content"].startswith("Rewrite") else (
                "In their burrows [1].")  # fmt: skip
            response = client.responses.create(
                model="gpt-4o-mini",
                instructions="Answer briefly.",
                input=[{"role": "user", "content": "Tell me about wombats."},
                       {"role": "assistant", "content": [{"type": "output_text", "text": "They dig [1]."}]},
                       {"role": "user", "content": [{"type": "input_text", "text": "Where do they rest?"}]}],
                tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
                temperature=0.3,
            )  # fmt: skip
            rewrite, answer = fake.chat_requests()[-2:]
    assert [m["content"] for m in rewrite.body["messages"][1:]] == ["Tell me about wombats.", "They dig [1].",
                                                                   "Where do they rest?"]  # fmt: skip
    assert answer.body["model"] == "gpt-4o-mini" and answer.body["temperature"] == 0.3
    assert answer.body["messages"][1]["content"] == "Answer briefly."
    assert response.output[0].queries == ["Where do wombats rest?"] and response.output_text == "In their burrows [1]."
    assert response.output[1].content[0].annotations[0].file_id == file_id
    assert (
        response.usage.output_tokens > 0
        and response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    )


def test_a_conversation_carries_turns_across_responses_and_lists_them_as_items(
    extractive: tuple[OpenAI, str, str],
) -> None:
    client, store_id, _ = extractive
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}]
    conversation = client.conversations.create(metadata={"topic": "wombats"})
    assert conversation.object == "conversation" and conversation.id.startswith("conv_")
    first = client.responses.create(model="m", input="Where do wombats rest by day?", tools=tools,
                                    conversation=conversation.id)  # fmt: skip
    assert first.conversation is not None and first.conversation.id == conversation.id
    second = client.responses.create(
        model="m", input="What do they dig with?", tools=tools, conversation=conversation.id
    )
    assert second.output[0].queries == ["Where do wombats rest by day? What do they dig with?"]  # the thread's question
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [(i.role, i.content[0].type) for i in items.data] == [
        ("user", "input_text"), ("assistant", "output_text"), ("user", "input_text"), ("assistant", "output_text")
    ]  # fmt: skip
    assert items.data[2].content[0].text == "What do they dig with?"
    assert items.data[3].content[0].text == second.output_text
    added = client.conversations.items.create(conversation.id, items=[{"type": "message", "role": "user",
                                                                      "content": "A note."}])  # fmt: skip
    note = client.conversations.items.retrieve(added.data[0].id, conversation_id=conversation.id)
    assert note.content[0].text == "A note."
    client.conversations.items.delete(note.id, conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(note.id, conversation_id=conversation.id)
    updated = client.conversations.update(conversation.id, metadata={"topic": "burrows"})
    assert client.conversations.retrieve(conversation.id).metadata == updated.metadata == {"topic": "burrows"}
    native = base_url_of(client)
    asked = httpx.post(f"{native}/v1/ask", json={"question": "Where do wombats rest?", "collection": store_id,
                                                 "conversation_id": conversation.id}, timeout=60)  # fmt: skip
    assert asked.status_code == 200 and asked.json()["conversation_id"] == conversation.id
    assert httpx.get(f"{native}/v1/conversations/{conversation.id}").json()["collection"] == store_id
    assert client.conversations.delete(conversation.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="Again?", tools=tools, conversation=conversation.id)


def test_a_streamed_response_cut_by_the_chat_api_ends_with_response_failed(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path, fake, embedding_model=MODEL)
        with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="0")) as url:
            client = OpenAI(base_url=url, api_key="unused", max_retries=0)
            store_id, _ = store_with_a_file(client, tmp_path)
            tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}]
            fake.chat_reply = "Wombats rest in their burrows by day, deep under the ground [1]."
            fake.queue(Fault("cut_stream", only="/chat/completions"))
            events = list(client.responses.create(model="m", input="Where do wombats rest?", tools=tools, stream=True))
            assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
            assert any(e.type == "response.output_text.delta" for e in events)
            fake.queue(Fault("status", status=400, only="/chat/completions"))
            with pytest.raises(openai.APIStatusError):  # before the first words: an HTTP error, not a 200 stream
                list(client.responses.create(model="m", input="Where do wombats rest?", tools=tools, stream=True))


def test_an_item_id_past_the_number_range_is_a_404_not_a_server_error(extractive: tuple[OpenAI, str, str]) -> None:
    client = extractive[0]
    conversation = client.conversations.create()
    for item in ("msg_801843126703", "msg_999999999999999999"):
        with pytest.raises(openai.NotFoundError):
            client.conversations.items.retrieve(item, conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id, after="msg_801843126703")


def test_texts_with_nul_are_stored_as_every_stored_text_is(extractive: tuple[OpenAI, str, str]) -> None:
    client = extractive[0]
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "a\x00b"}],
                                               metadata={"k": "v\x00"})  # fmt: skip
    assert conversation.metadata == {"k": "v\ufffd"}
    assert client.conversations.items.list(conversation.id).data[0].content[0].text == "a\ufffdb"
