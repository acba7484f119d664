"""An OpenAI-protocol HTTP client (httpx) with retries, backoff and clear errors.

Speaks ``POST /embeddings``, ``POST /chat/completions`` (plain and SSE) and
``GET /models`` against the AI/ML API or any OpenAI-compatible base URL.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx

from searchsvc.errors import ProviderAuthError, ProviderError, ProviderResponseError, ProviderUnavailableError

log = logging.getLogger("searchsvc.provider")

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 120.0


class OpenAICompatibleClient:
    """One shared ``httpx.Client`` per provider; thread-safe, so batches can run in parallel."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float = 60.0,
        max_retries: int = 6,
        key_variable: str = "AIMLAPI_API_KEY",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.key_variable = key_variable
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._with_retries("POST", path, body)

    def get_json(self, path: str) -> Any:
        return self._with_retries("GET", path, None)

    def _with_retries(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        last_problem = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.request(method, path, json=body)
            except httpx.TimeoutException as exc:
                last_problem, delay = f"timed out ({type(exc).__name__})", backoff_delay(attempt)
            except httpx.TransportError as exc:
                last_problem, delay = f"connection failed ({exc!r})", backoff_delay(attempt)
            else:
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        last_problem, delay = "the response body is not valid JSON", backoff_delay(attempt)
                else:
                    self._raise_unless_retryable(response, path)
                    last_problem = f"HTTP {response.status_code}: {_error_text(response)}"
                    delay = backoff_delay(attempt, retry_after_seconds(response.headers.get("retry-after")))
            if attempt < self.max_retries:
                log.warning(
                    "provider %s %s failed (%s); retry %d in %.2fs", method, path, last_problem, attempt + 1, delay
                )
                time.sleep(delay)
        raise ProviderUnavailableError(
            f"{method} {self.base_url}{path} failed after {self.max_retries + 1} attempts: {last_problem}. "
            "Nothing was stored; check the provider's status and run the command again"
        )

    def _raise_unless_retryable(self, response: httpx.Response, path: str) -> None:
        status = response.status_code
        if status in (401, 403):
            raise ProviderAuthError(
                f"the API at {self.base_url} rejected the API key (HTTP {status}: {_error_text(response)}); "
                f"set a valid key in {self.key_variable}"
            )
        if status not in RETRY_STATUSES:
            raise ProviderError(f"POST {self.base_url}{path} returned HTTP {status}: {_error_text(response)}")

    def stream_chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield parsed SSE ``data:`` events of a streaming chat completion (no retry once started)."""
        with self._client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
            if response.status_code >= 300:
                response.read()
                self._raise_unless_retryable(response, "/chat/completions")
                raise ProviderUnavailableError(f"chat stream refused: HTTP {response.status_code}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    yield json.loads(data)
                except ValueError as exc:
                    raise ProviderResponseError(f"malformed event in chat stream: {data[:200]!r}") from exc
        raise ProviderResponseError("the chat stream ended without [DONE]; the answer was cut")


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2**attempt))
    jittered = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        return max(min(retry_after, RETRY_AFTER_CAP_SECONDS), 0.0) + random.uniform(0, 0.1)
    return jittered


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    return str(body)[:300]
