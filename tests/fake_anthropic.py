"""The fake server's Anthropic side: ``POST /messages`` as Anthropic's Messages API answers it, whole or
streamed (``message_start``, ``content_block_*`` with ``text_delta`` and ``input_json_delta`` pieces,
``message_delta``, ``message_stop``), from the same scripted replies as its OpenAI side."""

from __future__ import annotations

import json
from typing import Any

from tests.fake_chat import ToolCalls, api_error


def openai_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's conversation as OpenAI messages, so one script answers both formats."""
    view: list[dict[str, Any]] = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    for turn in body.get("messages", []):
        content = turn["content"]
        if isinstance(content, str):
            view.append({"role": turn["role"], "content": content})
            continue
        for block in content:
            if block["type"] == "tool_result":
                view.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": block["content"]})
            elif block["type"] == "text":
                view.append({"role": turn["role"], "content": block["text"]})
            elif block["type"] == "tool_use":
                call = {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
                }
                view.append({"role": "assistant", "content": None, "tool_calls": [call]})
    return view


def answer_messages(handler: Any, server: Any, body: dict[str, Any]) -> None:
    if not isinstance(body.get("max_tokens"), int):
        return handler._send(400, api_error("max_tokens: Field required", "invalid_request_error"))
    reply = server.chat_reply(openai_view(body)) if callable(server.chat_reply) else server.chat_reply
    if (
        isinstance(reply, ToolCalls)
        and (body.get("tool_choice") or {}).get("type") == "none"
        and server.reply_without_tools
    ):
        reply = server.reply_without_tools
    if isinstance(reply, ToolCalls):
        calls = reply.entries(len(server.requests))
        blocks = [
            {"type": "tool_use", "id": c["id"].replace("call_", "toolu_"), "name": c["function"]["name"],
             "input": json.loads(c["function"]["arguments"])}
            for c in calls
        ]  # fmt: skip
        blocks = [{"type": "text", "text": reply.preamble}, *blocks] if reply.preamble else blocks
        stop = "tool_use"
    else:
        blocks, stop = [{"type": "text", "text": reply}], "end_turn"
    usage = {"input_tokens": 100, "output_tokens": 10}
    message = {"id": f"msg_{len(server.requests)}", "type": "message", "role": "assistant",
               "model": server.answer_model or body["model"]}  # fmt: skip
    if not body.get("stream"):
        return handler._send(200, {**message, "content": blocks, "stop_reason": stop, "usage": usage})
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("connection", "close")
    handler.end_headers()

    def send(kind: str, **data: Any) -> None:
        handler.wfile.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

    send("message_start", message={**message, "content": [], "usage": {"input_tokens": 100, "output_tokens": 1}})
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            send("content_block_start", index=index, content_block={"type": "text", "text": ""})
            for i, word in enumerate(block["text"].split(" ")):
                send(
                    "content_block_delta",
                    index=index,
                    delta={"type": "text_delta", "text": word if i == 0 else " " + word},
                )
        else:
            send("content_block_start", index=index, content_block={**block, "input": {}})
            arguments = json.dumps(block["input"])
            third = max(1, len(arguments) // 3)
            for piece in (arguments[:third], arguments[third : 2 * third], arguments[2 * third :]):
                send("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
        send("content_block_stop", index=index)
    send("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": 10})
    send("message_stop")
    handler.close_connection = True
