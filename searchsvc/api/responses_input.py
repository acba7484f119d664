"""What a ``POST /v1/responses`` request asks, read from its input items and tools.

Input items: ``message`` items (a string, or ``input_text``/``output_text`` parts), an earlier response's
output passed back (``file_search_call`` items are skipped, its ``message`` items are the turn), and the
caller's side of function calling: ``function_call`` items (the model's calls) and ``function_call_output``
items (what the caller's functions returned). The last user message is the question; the function calls
and outputs after it are shown to the model after the question, in OpenAI's chat format. Earlier calls
come with their outputs (a call never answered is left out: it never ran). A call passed back that the
thread already holds (with ``previous_response_id``) is the same call, kept once.

Tools: one ``file_search`` tool (its vector stores searched for the answer's sources) and any number of
``function`` tools, passed to the chat model as chat-completions tools; other kinds are refused by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from searchsvc.api.chat_completions import Conversation, read_conversation
from searchsvc.api.chat_models import ChatMessageIn
from searchsvc.api.openai_responses import new_id
from searchsvc.errors import InvalidInputError
from searchsvc.providers.tool_calls import ToolCall
from searchsvc.textclean import clean_json

ROLES = ("user", "assistant", "system", "developer")
KINDS = ("message", "file_search_call", "function_call", "function_call_output")
TEXT_PARTS = ("input_text", "output_text", "text")
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ResponseInput:
    conversation: Conversation  # the question, the thread before it (text turns), instructions in the input
    thread: tuple[dict[str, Any], ...]  # every turn up to the question, as chat messages (plain replies)
    tool_turns: tuple[dict[str, Any], ...]  # function calls after the question and their outputs


def as_items(given: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input as items as they are kept (cleaned, each checked, with an id, messages in parts)."""
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    return [_kept(clean_json(item), index) for index, item in enumerate(given)]


def _kept(item: dict[str, Any], index: int) -> dict[str, Any]:
    kind = item.get("type", "message")
    if kind not in KINDS:
        raise InvalidInputError(
            f"input[{index}] is a {kind!r} item: input takes message, function_call and function_call_output "
            "items (and an earlier response's file_search_call items, which are skipped)"
        ).at(f"input[{index}].type")
    if kind != "message":
        prefix = {"function_call": "fc", "function_call_output": "fco", "file_search_call": "fs"}[kind]
        return {"id": new_id(prefix), **item}
    if item.get("role") not in ROLES:
        raise InvalidInputError(
            f"input[{index}] is a message without a role of user, assistant, system or developer"
        ).at(f"input[{index}].role")
    part = "output_text" if item["role"] == "assistant" else "input_text"
    texts = _texts(item.get("content"), f"input[{index}].content")
    content = [{"type": part, "text": text, **({"annotations": []} if part == "output_text" else {})} for text in texts]
    return {"id": item.get("id") or new_id("msg"), "type": "message", "role": item["role"], "content": content,
            "status": "completed"}  # fmt: skip


def _texts(content: Any, place: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        raise InvalidInputError("a message's content is text, or a list of input_text/output_text parts").at(place)
    texts = []
    for number, part in enumerate(content):
        if part.get("type") not in TEXT_PARTS or not isinstance(part.get("text"), str):
            raise InvalidInputError(
                f"content part {number} is a {part.get('type')!r} part: messages take text parts only here"
            ).at(f"{place}[{number}]")
        texts.append(part["text"])
    return texts


def read_input(earlier: list[dict[str, Any]], items: list[dict[str, Any]]) -> ResponseInput:
    """The question (the last user message), what came before it, and the function calls after it.
    ``earlier``: the kept items of the thread the input follows (stored responses, a conversation)."""
    known = {i.get("call_id") for i in earlier if i.get("type") == "function_call"}
    items = [i for i in items if i.get("type") != "function_call" or i.get("call_id") not in known]
    every = [*earlier, *items]
    asked = max((n for n, item in enumerate(every) if item.get("role") == "user"), default=None)
    if asked is None:
        raise InvalidInputError(
            "input holds no user message: send the question (with the function_call items and their outputs), "
            "or previous_response_id with the outputs"
        ).at("input")
    question = every[asked]
    if not "".join(part["text"] for part in question["content"]).strip():
        raise InvalidInputError("the question (the last user message) has no text").at(_place(asked, len(earlier)))
    messages = [_chat_message(item) for item in every[: asked + 1] if item.get("type") == "message"]
    thread = [*_turns(every[:asked], len(earlier), strict=False), _chat_text(every[asked])]
    after = _turns(every[asked + 1 :], len(earlier) - asked - 1, strict=True)
    return ResponseInput(read_conversation(messages), tuple(thread), tuple(after))


def _place(index: int, offset: int) -> str:
    """Where an item is, for an error: in ``input``, or in the stored thread before it."""
    return f"input[{index - offset}]" if index >= offset else "previous_response_id"


def _chat_message(item: dict[str, Any]) -> ChatMessageIn:
    return ChatMessageIn(role=item["role"], content="\n".join(part["text"] for part in item["content"]))


def _chat_text(item: dict[str, Any]) -> dict[str, Any]:
    return {"role": item["role"], "content": "\n".join(part["text"] for part in item["content"])}


def _turns(items: list[dict[str, Any]], offset: int, strict: bool) -> list[dict[str, Any]]:
    """Items as chat messages: calls in a row become one assistant message with ``tool_calls``, each output
    a ``tool`` message. ``strict`` (after the question): every call must have its output, every output a
    call; before the question a call without an output is left out (it never ran)."""
    outputs = {i["call_id"]: n for n, i in enumerate(items) if i.get("type") == "function_call_output"}
    calls = {i.get("call_id") for i in items if i.get("type") == "function_call"}
    turns: list[dict[str, Any]] = []
    answered: set[str] = set()
    for number, item in enumerate(items):
        kind, place = item.get("type"), _place(number, offset)
        if kind == "function_call" and (item.get("call_id") in outputs or strict):
            _check_call(item, outputs, place)
            part = ToolCall(item["call_id"], item["name"], item["arguments"]).as_message_part()
            if turns and turns[-1].get("tool_calls") is not None and turns[-1]["role"] == "assistant":
                turns[-1]["tool_calls"].append(part)
            else:
                turns.append({"role": "assistant", "content": None, "tool_calls": [part]})
        elif kind == "function_call_output":
            call_id = _output_of(item, calls, answered, place)
            turns.append({"role": "tool", "tool_call_id": call_id, "content": _output(item, place)})
        elif kind == "message" and any(part["text"] for part in item["content"]):
            turns.append(_chat_text(item))
    return turns


def _check_call(item: dict[str, Any], outputs: dict[str, int], place: str) -> None:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise InvalidInputError(f"a function_call needs {name} as a string").at(f"{place}.{name}")
    if item["call_id"] not in outputs:
        raise InvalidInputError(
            f"function call {item['call_id']!r} has no function_call_output: send the output after it"
        ).at(place)


def _output_of(item: dict[str, Any], calls: set[Any], answered: set[str], place: str) -> str:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or call_id not in calls:
        raise InvalidInputError(f"this function_call_output answers call {call_id!r}, which no function_call made").at(
            f"{place}.call_id"
        )
    if call_id in answered:
        raise InvalidInputError(f"call {call_id!r} already has its output").at(f"{place}.call_id")
    answered.add(call_id)
    return call_id


def _output(item: dict[str, Any], place: str) -> str:
    output = item.get("output")
    if isinstance(output, list):
        output = "\n".join(p.get("text", "") for p in output if isinstance(p, dict) and p.get("type") == "input_text")
    if not isinstance(output, str):
        raise InvalidInputError("a function_call_output's output must be text (or input_text parts)").at(
            f"{place}.output"
        )
    return output


def function_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The caller's ``function`` tools as chat-completions tools (each checked)."""
    found = []
    for index, tool in enumerate(tools):
        if tool.get("type") != "function":
            continue
        name, parameters = tool.get("name"), tool.get("parameters")
        if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
            raise InvalidInputError("a function's name is 1-64 letters, digits, _ or -").at(f"tools[{index}].name")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidInputError("parameters must be a JSON schema object").at(f"tools[{index}].parameters")
        function = {"name": name, "parameters": parameters or {"type": "object", "properties": {}}}
        function |= {k: tool[k] for k in ("description", "strict") if tool.get(k) is not None}
        found.append({"type": "function", "function": function})
    return found


def tool_choice(choice: Any, functions: list[dict[str, Any]]) -> Any:
    """The chat-completions ``tool_choice`` for the caller's: ``auto``/``none``/``required``, or one
    function by name; choosing ``file_search`` is ``auto`` (it always runs)."""
    if choice is None or (isinstance(choice, dict) and choice.get("type") == "file_search"):
        return "auto"
    if choice in TOOL_CHOICES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        names = {f["function"]["name"] for f in functions}
        if choice.get("name") not in names:
            raise InvalidInputError(
                f"tool_choice names {choice.get('name')!r}, which is not one of the function tools"
            ).at("tool_choice")
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidInputError(
        "tool_choice: send auto, none, required, {type: function, name}, or {type: file_search}"
    ).at("tool_choice")
