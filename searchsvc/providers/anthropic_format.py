"""Anthropic's Messages format (``POST /messages``), for chat models configured to speak it.

searchsvc writes every conversation in OpenAI's chat format; this module translates on the way out
(system messages to ``system``; tool calls to ``tool_use`` blocks; tool results to ``tool_result`` blocks
in a user turn; ``tools`` to ``input_schema``) and back (``content`` blocks to text and tool calls;
``stop_reason`` to ``finish_reason``; ``input_tokens``/``output_tokens`` to OpenAI's usage; the stream's
``content_block_*`` events to the same deltas the OpenAI stream gives).

Generation parameters Anthropic has (``max_tokens``, ``temperature``, ``top_p``, ``top_k``, ``stop`` as
``stop_sequences``, ``metadata``) are passed on; OpenAI-only ones (penalties, ``seed``, ``logit_bias``,
``logprobs``) have no counterpart and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from searchsvc.errors import ProviderResponseError
from searchsvc.providers.tool_calls import ToolCall

DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens
PASSED_ON = ("temperature", "top_p", "top_k", "metadata")
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


def uses_anthropic(chat_format: str, model: str) -> bool:
    """``anthropic``: always; ``auto``: Claude models (``claude-...`` or ``anthropic/...``); ``openai``: never."""
    if chat_format == "auto":
        return model.startswith(("claude", "anthropic/"))
    return chat_format == "anthropic"


def request_body(messages: list[dict[str, Any]], model: str, params: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-format conversation and its parameters as a Messages API request."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer") and m.get("content"))
    body: dict[str, Any] = {"model": model, "messages": _turns(messages)}
    body["max_tokens"] = params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
    body |= {name: params[name] for name in PASSED_ON if params.get(name) is not None}
    if params.get("stop"):
        body["stop_sequences"] = [params["stop"]] if isinstance(params["stop"], str) else list(params["stop"])
    if system:
        body["system"] = system
    if params.get("tools"):
        body["tools"] = [_tool(t) for t in params["tools"]]
        body["tool_choice"] = _tool_choice(params.get("tool_choice", "auto"), params.get("parallel_tool_calls"))
    return body


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any]:
    """OpenAI's ``tool_choice`` (a word, or ``{type: function, function: {name}}``) in Anthropic's terms;
    ``parallel_tool_calls: false`` is its ``disable_parallel_tool_use``."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        found = {"type": "tool", "name": (choice.get("function") or {}).get("name") or choice.get("name")}
    else:
        found = dict(TOOL_CHOICES.get(choice, {"type": "auto"}))
    if parallel is False and found["type"] != "none":
        found["disable_parallel_tool_use"] = True
    return found


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    return {"name": function["name"], "description": function.get("description", ""), "input_schema": schema}


def _turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """User and assistant turns; consecutive tool results join one user turn, as Anthropic requires."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": message["content"]}
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": message["content"]}] if message.get("content") else []
            )
            blocks += [_tool_use(call) for call in message["tool_calls"]]
            turns.append({"role": "assistant", "content": blocks})
        elif role in ("user", "assistant"):
            turns.append({"role": role, "content": message.get("content") or ""})
    return turns


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call["function"]
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    return {
        "type": "tool_use",
        "id": call["id"],
        "name": function["name"],
        "input": arguments if isinstance(arguments, dict) else {},
    }


def usage(raw: dict[str, Any] | None) -> dict[str, int]:
    raw = raw or {}
    prompt, completion = int(raw.get("input_tokens") or 0), int(raw.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def parse_message(body: Any) -> tuple[str, list[ToolCall], str | None, dict[str, int], str | None]:
    """A Messages API reply as (text, tool calls, finish_reason, usage, model)."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise ProviderResponseError(f"the /messages answer has no content list: {str(body)[:200]!r}")
    texts, calls = [], []
    for block in body["content"]:
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(
                ToolCall(str(block.get("id", "")), str(block.get("name", "")), json.dumps(block.get("input") or {}))
            )
    finish = FINISH_REASONS.get(body.get("stop_reason") or "", body.get("stop_reason"))
    return "".join(texts), calls, finish, usage(body.get("usage")), body.get("model")


StreamPiece = tuple[str, list[dict[str, Any]] | None, str | None, dict[str, int] | None, str | None]


def stream_pieces(events: Iterator[dict[str, Any]]) -> Iterator[StreamPiece]:
    """The stream's events as (text, tool call pieces in OpenAI's shape, finish_reason, usage, model) tuples;
    the model the server says answered comes once, from ``message_start``."""
    prompt_tokens = 0
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            prompt_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
            model = message.get("model")
            if isinstance(model, str) and model:
                yield "", None, None, None, model
        elif kind == "content_block_start" and (event.get("content_block") or {}).get("type") == "tool_use":
            block = event["content_block"]
            head = {
                "index": event.get("index", 0),
                "id": block.get("id"),
                "function": {"name": block.get("name"), "arguments": ""},
            }
            yield "", [head], None, None, None
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield str(delta.get("text", "")), None, None, None, None
            elif delta.get("type") == "input_json_delta":
                piece = {"index": event.get("index", 0), "function": {"arguments": delta.get("partial_json", "")}}
                yield "", [piece], None, None, None
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            output = int((event.get("usage") or {}).get("output_tokens") or 0)
            totals = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": output,
                "total_tokens": prompt_tokens + output,
            }
            yield "", None, FINISH_REASONS.get(stop or "", stop), totals, None
        elif kind == "error":
            raise ProviderResponseError(f"the /messages stream sent an error: {event.get('error')}; the answer was cut")
