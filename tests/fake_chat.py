"""The fake server's chat side: ``POST /chat/completions`` as OpenAI answers it, whole or streamed, from a
scripted reply (a string, a ``ToolCalls``, or a function of the messages giving one): cut at ``max_tokens``
(finish_reason ``length``), usage in a stream only when asked for, tool calls with their arguments in
pieces, and a model that ignores ``tool_choice: "none"`` on command."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any


def api_error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class ToolCalls:
    """A scripted reply that calls functions: (name, arguments) pairs; arguments a dict or raw JSON text."""

    calls: list[tuple[str, Any]]
    preamble: str = ""  # text the model writes before calling (Claude often does: "Let me search for that.")

    def entries(self, request_number: int) -> list[dict[str, Any]]:
        return [
            {"id": f"call_{request_number}_{i}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
            for i, (name, args) in enumerate(self.calls)
        ]  # fmt: skip


def answer_chat(handler: Any, server: Any, body: dict[str, Any], fault: Any) -> None:
    """``POST /chat/completions``: the scripted reply, whole or streamed, cut at max_tokens; tool calls."""
    options = body.get("stream_options")
    if options is not None and server.refuse_stream_options:
        error = api_error("Unrecognized request argument supplied: stream_options", "invalid_request_error")
        return handler._send(400, error)
    overflow = _over_context(server, body)
    if overflow is not None:
        return handler._send(400, overflow)
    reply = server.chat_reply(body["messages"]) if callable(server.chat_reply) else server.chat_reply
    if isinstance(reply, ToolCalls) and body.get("tool_choice") == "none" and server.reply_without_tools:
        reply = server.reply_without_tools
    if isinstance(reply, ToolCalls):
        return _tool_calls(handler, server, reply, body)
    reply, finish = _limited(reply, body.get("max_completion_tokens") or body.get("max_tokens"))
    usage = {"prompt_tokens": 100, "completion_tokens": len(reply.split()), "total_tokens": 0}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    ident = {"id": f"chatcmpl-{len(server.requests)}", "created": int(time.time()),
             "model": server.answer_model or body["model"]}  # fmt: skip
    if not body.get("stream"):
        message = {"role": "assistant", "content": reply, "refusal": None}
        chances = _logprobs(reply.split(" "), body) if body.get("logprobs") else None
        choice = {"index": 0, "message": message, "logprobs": chances, "finish_reason": finish}
        return handler._send(200, {**ident, "object": "chat.completion", "choices": [choice], "usage": usage})
    with_usage = bool(options and options.get("include_usage")) or server.usage_unasked
    _stream_chat(handler, reply, ident, usage if with_usage else None, fault, finish, body)


def _tool_calls(handler: Any, server: Any, reply: ToolCalls, body: dict[str, Any]) -> None:
    """Function calls, as OpenAI sends them: whole in a message, or streamed with each call's id and
    name first and its arguments in three pieces after."""
    calls = reply.entries(len(server.requests))
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    ident = {"id": f"chatcmpl-{len(server.requests)}", "created": int(time.time()),
             "model": server.answer_model or body["model"]}  # fmt: skip
    if not body.get("stream"):
        message = {"role": "assistant", "content": reply.preamble or None, "refusal": None, "tool_calls": calls}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        return handler._send(200, {**ident, "object": "chat.completion", "choices": [choice], "usage": usage})
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("connection", "close")
    handler.end_headers()
    options = body.get("stream_options") or {}
    base = {**ident, "object": "chat.completion.chunk"}

    def send(delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        handler.wfile.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())

    for word in reply.preamble.split(" ") if reply.preamble else []:
        send({"role": "assistant", "content": word + " "})
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function"}
        send(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}],
            }
        )
        arguments = call["function"]["arguments"]
        third = max(1, len(arguments) // 3)
        for piece in (arguments[:third], arguments[third : 2 * third], arguments[2 * third :]):
            send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    send({}, "tool_calls")
    if options.get("include_usage"):
        handler.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
    handler.wfile.write(b"data: [DONE]\n\n")
    handler.close_connection = True


def _stream_chat(
    handler: Any, reply: str, ident: dict[str, Any], usage: Any, fault: Any, finish: str, body: dict[str, Any]
) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("connection", "close")
    handler.end_headers()
    kind = fault.kind if fault else None
    words = [] if kind == "empty_stop" else reply.split(" ")  # a proxy's empty answer closed as a normal stop
    cut = len(words) // 2 if kind in ("cut_stream", "error_in_stream") else None
    base = {**ident, "object": "chat.completion.chunk", **({"usage": None} if usage else {})}

    def send(choices: list[dict[str, Any]], **extra: Any) -> None:
        handler.wfile.write(f"data: {json.dumps({**base, 'choices': choices, **extra})}\n\n".encode())
        handler.wfile.flush()

    for i, word in enumerate(words[:cut]):
        delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
        chances = _logprobs([delta["content"]], body) if body.get("logprobs") else None
        send([{"index": 0, "delta": delta, "logprobs": chances, "finish_reason": None}])
    if kind == "error_in_stream":  # what vLLM and LiteLLM send when generation fails mid-answer
        handler.wfile.write(f"data: {json.dumps(api_error('upstream model crashed', 'server_error'))}\n\n".encode())
        handler.wfile.write(b"data: [DONE]\n\n")
    if cut is None:
        send([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        if usage:
            send([], usage=usage)
        handler.wfile.write(b"data: [DONE]\n\n")
    handler.close_connection = True


def _limited(reply: str, max_tokens: Any) -> tuple[str, str]:
    """A reply cut at ``max_tokens`` words, as a model stops at its token limit: finish_reason "length"."""
    words = reply.split(" ")
    if isinstance(max_tokens, int) and len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return reply, "stop"


def _logprobs(tokens: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``logprobs`` of a choice or chunk: a made-up log probability per word (its "token"), with
    ``top_logprobs`` alternatives when asked."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    top = body.get("top_logprobs") or 0
    return {"content": [{**entry(t, -0.25), "top_logprobs": [entry(f"{t}~{n}", -1.0 - n) for n in range(top)]}
                        for t in tokens], "refusal": None}  # fmt: skip


def _over_context(server: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 when the prompt and the answer's room pass the model's context (``chat_context_tokens``;
    llama.cpp and vLLM refuse the same way), counted with cl100k_base."""
    if server.chat_context_tokens is None:
        return None
    from tests.fake_openai import token_count

    prompt = sum(token_count(str(m.get("content") or "")) + 4 for m in body.get("messages", []))
    wanted = prompt + int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
    server.chat_prompt_tokens.append(prompt)
    if wanted <= server.chat_context_tokens:
        return None
    message = (
        f"This model's maximum context length is {server.chat_context_tokens} tokens. However, you "
        f"requested {wanted} tokens ({prompt} in the messages). Please reduce the length of the messages."
    )
    return api_error(message, "invalid_request_error", "messages", "context_length_exceeded")
