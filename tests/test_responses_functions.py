"""Function tools on ``POST /v1/responses``: the caller's functions go to the chat model (the fake OpenAI
server), its calls come back as ``function_call`` items, and their outputs (after ``previous_response_id``,
or in the input after the question) are shown to it for the answer. Also a response without file_search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_chat import ToolCalls
from tests.fake_openai import FakeOpenAI
from tests.servers import serving
from tests.test_openai_responses import store_with_a_file

pytestmark = pytest.mark.tools
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Today's weather in a city.",
    "parameters": CITY,
}


def weather_model(messages: list[dict[str, Any]]) -> Any:
    """Calls get_weather until it has the weather, then answers from it and from source 1."""
    if messages[-1]["role"] == "tool":
        return f"It is {messages[-1]['content']} in Canberra, and wombats rest in burrows [1]."
    return ToolCalls([("get_weather", {"city": "Canberra"})])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAI, FakeOpenAI, str]]:
    tmp = tmp_path_factory.mktemp("functions")
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp, fake, embedding_model=MODEL)
        with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="0")) as url:
            client = OpenAI(base_url=url, api_key="unused", max_retries=0)
            store_id, _ = store_with_a_file(client, tmp)
            yield client, fake, store_id


def test_a_function_call_comes_back_and_its_output_is_answered(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client, fake, store_id = served
    fake.chat_reply = weather_model
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}, WEATHER]
    first = client.responses.create(model="gpt-4o-mini", input="Is it a good day for wombats to dig?", tools=tools,
                                    tool_choice="auto", parallel_tool_calls=False)  # fmt: skip
    asked = fake.chat_requests()[-1].body
    assert asked["tools"] == [{"type": "function", "function": {"name": "get_weather", "description":
                               "Today's weather in a city.", "parameters": WEATHER["parameters"]}}]  # fmt: skip
    assert asked["tool_choice"] == "auto" and asked["parallel_tool_calls"] is False
    search, call = first.output
    assert search.type == "file_search_call" and call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Canberra"} and call.call_id and first.output_text == ""
    second = client.responses.create(
        model="gpt-4o-mini", previous_response_id=first.id, tools=tools,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )  # fmt: skip
    shown = fake.chat_requests()[-1].body["messages"]
    assert shown[-2]["tool_calls"][0]["id"] == call.call_id and shown[-1] == {
        "role": "tool", "tool_call_id": call.call_id, "content": "sunny"}  # fmt: skip
    assert "Question: Is it a good day for wombats to dig?" in shown[-3]["content"]
    assert second.output_text == "It is sunny in Canberra, and wombats rest in burrows [1]."
    assert second.output[1].content[0].annotations[0].type == "file_citation"
    stateless = client.responses.create(model="gpt-4o-mini", tools=tools, input=[
        {"role": "user", "content": "Is it a good day for wombats to dig?"}, call.model_dump(),
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}])  # fmt: skip
    assert stateless.output_text.startswith("It is rainy")


def test_a_streamed_function_call_sends_its_argument_events(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client, fake, store_id = served
    fake.chat_reply = weather_model
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}, WEATHER]
    events = list(client.responses.create(model="gpt-4o-mini", input="Weather for digging?", tools=tools, stream=True))
    kinds = [e.type for e in events]
    assert kinds[-5:] == ["response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert "response.output_text.delta" not in kinds and [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response
    assert [o.type for o in done.output] == ["file_search_call", "function_call"]
    assert json.loads(events[-3].arguments) == {"city": "Canberra"} and done.output[1].arguments == events[-3].arguments
    assert client.responses.retrieve(done.id).output[1].call_id == done.output[1].call_id


def test_a_response_without_file_search_is_the_chat_models_reply(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client, fake, _ = served
    fake.chat_reply = "Plain words, and a bracket [7] kept as written."
    first = client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Hello there.")
    assert first.output_text == "Plain words, and a bracket [7] kept as written." and len(first.output) == 1
    second = client.responses.create(model="gpt-4o-mini", input="And again?", previous_response_id=first.id,
                                     stream=True)  # fmt: skip
    text = "".join(e.delta for e in second if e.type == "response.output_text.delta")
    assert text == first.output_text
    assert fake.chat_requests()[-1].body["messages"] == [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "And again?"},
    ]  # fmt: skip  (instructions are not carried over, as OpenAI does)
    fake.chat_reply = weather_model
    called = client.responses.create(model="gpt-4o-mini", input="Weather?", tools=[WEATHER],
                                     tool_choice={"type": "function", "name": "get_weather"})  # fmt: skip
    assert fake.chat_requests()[-1].body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert [o.type for o in called.output] == ["function_call"]


def test_function_inputs_that_do_not_fit_are_400s(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client = served[0]
    call: Any = {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": [{"role": "user", "content": "Q?"}, call]}, "input[1]"),  # a call without its output
        (
            {
                "input": [
                    {"role": "user", "content": "Q?"},
                    {**call, "type": "function_call_output", "call_id": "c9", "output": "x"},
                ]
            },
            "input[1].call_id",
        ),
        ({"input": "Q?", "tools": [{**WEATHER, "name": "bad name"}]}, "tools[0].name"),
        ({"input": "Q?", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "other"}}, "tool_choice"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        ({"input": [{"type": []}]}, "input[0].type"),
        ({"input": [{"role": "user", "content": ["hi"]}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0]"),
        ({"input": [{"role": "user", "content": " "}]}, "input[0]"),
        (
            {
                "input": [
                    {"role": "user", "content": "Q?"},
                    call,
                    {"type": "function_call_output", "call_id": "c1", "output": "x"},
                    {"type": "function_call_output", "call_id": "c1", "output": "y"},
                ]
            },
            "input[3].call_id",
        ),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="gpt-4o-mini", **body)
        assert refused.value.body["param"] == param, refused.value.body


def test_function_tools_reach_a_model_speaking_anthropics_format(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        settings = remote_settings(tmp_path, fake, embedding_model=MODEL)
        with serving(cli_env(settings, fake, SEARCHSVC_MAX_RETRIES="0", SEARCHSVC_CHAT_FORMAT="anthropic")) as url:
            client = OpenAI(base_url=url, api_key="unused", max_retries=0)
            fake.chat_reply = weather_model
            choice: Any = {"type": "function", "name": "get_weather"}
            first = client.responses.create(model="claude-x", input="Weather?", tools=[WEATHER], tool_choice=choice,
                                            parallel_tool_calls=False)  # fmt: skip
            call = first.output[0]
            second = client.responses.create(model="claude-x", previous_response_id=first.id, tools=[WEATHER],
                                             input=[{"type": "function_call_output", "call_id": call.call_id,
                                                     "output": "windy"}])  # fmt: skip
            sent = [r.body for r in fake.requests if r.path.endswith("/messages")]
    assert sent[0]["tools"] == [{"name": "get_weather", "description": "Today's weather in a city.",
                                 "input_schema": CITY}]  # fmt: skip
    assert sent[0]["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Canberra"}
    assert sent[1]["messages"][-1]["content"][0] == {"type": "tool_result", "tool_use_id": call.call_id,
                                                     "content": "windy"}  # fmt: skip
    assert second.output_text.startswith("It is windy in Canberra")


def test_a_call_passed_back_with_previous_response_id_is_kept_once(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client, fake, store_id = served
    fake.chat_reply = weather_model
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}, WEATHER]
    body = {"model": "gpt-4o-mini", "input": "Weather \ud800 for digging?", "tools": tools}  # a lone surrogate
    sent = httpx.post(f"{client.base_url}responses", content=json.dumps(body), timeout=60,
                      headers={"content-type": "application/json"})  # fmt: skip
    first = Response.model_validate(sent.json())
    call = first.output[1]
    again = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=tools, input=[
        call.model_dump(), {"type": "function_call_output", "call_id": call.call_id, "output": "calm"}])  # fmt: skip
    shown = fake.chat_requests()[-1].body["messages"]
    assert [c["id"] for m in shown for c in m.get("tool_calls") or []] == [call.call_id]
    assert again.output_text.startswith("It is calm")
    items = client.responses.input_items.list(first.id).data
    assert items[0].type == "message" and items[0].content[0].text == "Weather \ufffd for digging?"
    fake.chat_reply = "Later words."
    later = client.responses.create(model="gpt-4o-mini", previous_response_id=again.id, input="And tomorrow?")
    assert later.output_text == "Later words."  # no file_search: the whole thread, the call and its output in it
    roles = [m["role"] for m in fake.chat_requests()[-1].body["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


def test_a_conversation_records_the_turn_once_the_calls_are_answered(served: tuple[OpenAI, FakeOpenAI, str]) -> None:
    client, fake, store_id = served
    fake.chat_reply = lambda m: weather_model(m) if m[-1]["role"] == "tool" else ToolCalls(
        [("get_weather", {"city": "Canberra"})], preamble="Let me check.")  # fmt: skip
    tools: Any = [{"type": "file_search", "vector_store_ids": [store_id]}, WEATHER]
    conversation = client.conversations.create()
    first = client.responses.create(model="gpt-4o-mini", input="Dig today?", tools=tools, conversation=conversation.id)
    call = first.output[-1]
    assert call.type == "function_call" and first.output[1].type == "message"  # the preamble, then the call
    assert client.conversations.items.list(conversation.id).data == []  # calls pending: no turn yet
    with pytest.raises(openai.BadRequestError) as refused:
        output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "x"}]
        client.responses.create(model="gpt-4o-mini", tools=tools, conversation=conversation.id, input=output)
    assert "send the question" in refused.value.body["message"]
    answered = client.responses.create(model="gpt-4o-mini", tools=tools, conversation=conversation.id, input=[
        {"role": "user", "content": "Dig today?"}, call.model_dump(),
        {"type": "function_call_output", "call_id": call.call_id, "output": "dry"}])  # fmt: skip
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [(i.role, i.content[0].text) for i in items] == [("user", "Dig today?"),
                                                             ("assistant", answered.output_text)]  # fmt: skip
