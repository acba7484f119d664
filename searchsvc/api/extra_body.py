"""``extra_body``: parameters of a chat server's own dialect (llama.cpp's ``repeat_penalty``, vLLM's ``min_p``
or ``guided_json``), merged unchanged into the JSON body searchsvc sends to ``POST /chat/completions``.

Keys searchsvc writes itself are refused, and so are parameters that have a field of their own (the message
names the field to send instead); the object may be 16 KB at most as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_EXTRA_BODY_BYTES = 16_384
MAX_EXTRA_BODY_KEYS = 64
# Keys of the chat request searchsvc writes itself: the caller's extra_body never overrides them.
SET_BY_SEARCHSVC = (
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "n",
)
EXTRA_BODY_DESCRIPTION = (
    "Parameters of the chat server's own dialect, merged unchanged into the JSON body sent to "
    "`POST /chat/completions` (not to Anthropic's `/messages`). llama.cpp: "
    '`{"repeat_penalty": 1.1, "mirostat": 2}`; vLLM: `{"min_p": 0.05, "guided_json": {"type": "object", '
    '"properties": {...}}}`. Keys searchsvc sets itself (model, messages, stream, '
    "stream_options, tools, tool_choice, parallel_tool_calls, functions, function_call, n) and parameters with "
    f"a field of their own are refused; {MAX_EXTRA_BODY_KEYS} keys and {MAX_EXTRA_BODY_BYTES // 1024} KB of "
    "JSON at most."
)


def check_extra_body(value: Any, own_fields: Mapping[str, str]) -> dict[str, Any] | None:
    """``value`` when it can be merged into a chat request, else a ValueError that names the key and what to
    do. ``own_fields`` maps a chat request key to the field of this request that sets it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(
            f'extra_body must be a JSON object of parameters, such as {{"repeat_penalty": 1.1}}, not '
            f"{type(value).__name__}"
        )
    for key in value:
        if key in SET_BY_SEARCHSVC:
            raise ValueError(f"extra_body cannot hold {key!r}: searchsvc sets it itself; leave it out")
        if key in own_fields:
            raise ValueError(f"extra_body cannot hold {key!r}: it has its own field; send {own_fields[key]} instead")
    return check_size(value, "extra_body")


def check_size(value: dict[str, Any], what: str) -> dict[str, Any]:
    """``value`` when it has at most 64 keys and 16 KB of JSON without NaN, else a ValueError saying which
    limit ``what`` (the name the caller knows it by) passed."""
    if len(value) > MAX_EXTRA_BODY_KEYS:
        raise ValueError(f"{what} has {len(value)} keys; it may have {MAX_EXTRA_BODY_KEYS} at most")
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise ValueError(f"{what} holds NaN or infinity, which JSON cannot carry; send numbers") from None
    if size > MAX_EXTRA_BODY_BYTES:
        raise ValueError(f"{what} is {size:,} bytes as JSON; it may be {MAX_EXTRA_BODY_BYTES:,} at most")
    return value
