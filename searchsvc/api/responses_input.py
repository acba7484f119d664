"""What a ``POST /v1/responses`` request asks, read from its input items and tools.

Input items: ``message`` items (a string, or ``input_text``/``output_text`` parts), an earlier response's
output passed back (``file_search_call`` items are skipped, its ``message`` items are the turn), and the
caller's side of function calling: ``function_call`` items (the model's calls) and ``function_call_output``
items (what the caller's functions returned). The last user message is the question; the function calls
and outputs after it are shown to the model after the question, in OpenAI's chat format.

Tools: one ``file_search`` tool (its vector stores searched for the answer's sources) and any number of
``function`` tools, passed to the chat model as chat-completions tools; other kinds are refused by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from searchsvc.api.chat_completions import Conversation, read_conversation
from searchsvc.api.chat_models import ChatMessageIn
from searchsvc.errors import InvalidInputError
from searchsvc.providers.tool_calls import ToolCall

ROLES = ("user", "assistant", "system", "developer")
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ResponseInput:
    conversation: Conversation  # the question, the thread before it (text turns), instructions in the input
    thread: tuple[dict[str, Any], ...]  # every message up to the question, as chat messages (plain replies)
    tool_turns: tuple[dict[str, Any], ...]  # function calls after the question and their outputs


def as_items(given: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input as a list of items (a string is one user message)."""
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}]
    return given


def read_input(items: list[dict[str, Any]]) -> ResponseInput:
    """The question (the last user message), what came before it, and the function calls after it."""
    if not items:
        raise InvalidInputError("input holds no message").at("input")
    messages: list[tuple[int, ChatMessageIn]] = []
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            messages.append((index, _message(item, index)))
        elif kind not in ("file_search_call", "function_call", "function_call_output"):
            raise InvalidInputError(
                f"input[{index}] is a {kind!r} item: input takes message, function_call and function_call_output "
                "items (and an earlier response's file_search_call items, which are skipped)"
            ).at(f"input[{index}]")
    users = [index for index, message in messages if message.role == "user"]
    if not users:
        raise InvalidInputError(
            "input holds no user message: send the question, or previous_response_id with the function outputs"
        ).at("input")
    asked = users[-1]
    before = [message for index, message in messages if index <= asked]
    conversation = read_conversation(before)
    thread = tuple({"role": m.role, "content": _text(m)} for m in before if _text(m))
    return ResponseInput(conversation, thread, tuple(_tool_turns(items, asked)))


def _message(item: dict[str, Any], index: int) -> ChatMessageIn:
    if item.get("role") not in ROLES:
        raise InvalidInputError(
            f"input[{index}] is a message without a role of user, assistant, system or developer"
        ).at(f"input[{index}].role")
    content = item.get("content")
    if isinstance(content, list):
        content = [{"type": "text", "text": p.get("text")} if p.get("type") in ("input_text", "output_text") else p
                   for p in content]  # fmt: skip
    return ChatMessageIn(role=item["role"], content=content)


def _text(message: ChatMessageIn) -> str:
    content = message.content
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content or [])


def _tool_turns(items: list[dict[str, Any]], asked: int) -> list[dict[str, Any]]:
    """Items after the question as chat messages: calls in a row become one assistant message with
    ``tool_calls``, each output a ``tool`` message; every call must have its output, and every output a call."""
    turns: list[dict[str, Any]] = []
    called: dict[str, int] = {}
    answered: set[str] = set()
    for index in range(asked + 1, len(items)):
        item = items[index]
        kind = item.get("type", "message")
        if kind == "function_call":
            call_id = _string(item, "call_id", index)
            called[call_id] = index
            part = ToolCall(call_id, _string(item, "name", index), _string(item, "arguments", index)).as_message_part()
            if turns and turns[-1]["role"] == "assistant" and turns[-1].get("tool_calls") is not None:
                turns[-1]["tool_calls"].append(part)
            else:
                turns.append({"role": "assistant", "content": None, "tool_calls": [part]})
        elif kind == "function_call_output":
            call_id = _string(item, "call_id", index)
            if call_id not in called:
                raise InvalidInputError(
                    f"input[{index}] answers call {call_id!r}, which no function_call after the question made"
                ).at(f"input[{index}].call_id")
            answered.add(call_id)
            turns.append({"role": "tool", "tool_call_id": call_id, "content": _output(item, index)})
        elif kind == "message":
            text = _text(_message(item, index))
            if text:
                turns.append({"role": "assistant", "content": text})
    unanswered = [index for call_id, index in called.items() if call_id not in answered]
    if unanswered:
        raise InvalidInputError(
            f"input[{unanswered[0]}] is a function_call without its function_call_output: send the output"
        ).at(f"input[{unanswered[0]}]")
    return turns


def _string(item: dict[str, Any], name: str, index: int) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"input[{index}] ({item.get('type')}) needs {name} as a string").at(
            f"input[{index}].{name}"
        )
    return value


def _output(item: dict[str, Any], index: int) -> str:
    output = item.get("output")
    if isinstance(output, list):
        output = "\n".join(p.get("text", "") for p in output if isinstance(p, dict) and p.get("type") == "input_text")
    if not isinstance(output, str):
        raise InvalidInputError(f"input[{index}].output must be text (or input_text parts)").at(
            f"input[{index}].output"
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
