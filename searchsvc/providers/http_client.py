"""An OpenAI-protocol HTTP client (httpx) with retries, backoff and clear errors.

Speaks ``POST /embeddings``, ``POST /chat/completions`` (plain and SSE) and
``GET /models`` against the AI/ML API or any OpenAI-compatible base URL.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from searchsvc.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from searchsvc.providers.rate_limits import LearnedLimits, parse_rate_headers

log = logging.getLogger("searchsvc.provider")

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 120.0
CONNECT_TIMEOUT_SECONDS = 5.0
REFUSED_RETRIES = 2  # a refused connection is retried twice, quickly: a restarting server gets a second
REFUSED_DELAY_SECONDS = 0.25
DEFAULT_DEADLINE_SECONDS = 120.0
STORED_NOTHING = "Nothing was stored; check the provider's status and run the command again"
QUERY_NOT_EMBEDDED = "The query was not embedded, so nothing was searched; try again shortly or check the provider"
GENERATION_PATHS = ("/chat/completions", "/messages")  # a timed-out generation may still be running: not resent


@dataclass
class _Success:
    body: Any


@dataclass
class _Failure:
    problem: str
    retry_after: float | None = None  # the server's Retry-After, in seconds
    refused: httpx.ConnectError | None = None  # nothing listens there (or the name does not resolve)
    status: int | None = None  # the HTTP status it answered with, if it answered
    timed_out: bool = False  # sent, and no answer came within the timeout (the server may still be on it)


@dataclass(frozen=True)
class CallPolicy:
    """How one call retries: its total ``deadline`` (None: the client's), its ``retries`` (None: the client's),
    whether a request that timed out is sent again as it was, and what the final error says happened."""

    deadline: float | None = None
    retries: int | None = None
    resend_after_timeout: bool = True
    consequence: str = STORED_NOTHING


class ProviderHealth:
    """The outcome of the latest call to a provider, for readiness probes (no call of its own)."""

    def __init__(self) -> None:
        self.ok: bool | None = None  # None: never called
        self.problem = ""
        self.at = 0.0

    def record(self, ok: bool, problem: str = "") -> None:
        self.ok, self.problem, self.at = ok, problem, time.monotonic()


class OpenAICompatibleClient:
    """One shared ``httpx.Client`` per provider; thread-safe, so batches can run in parallel.

    Every call has a total deadline that bounds its attempts and their backoff; a refused
    connection is retried only briefly, since nothing listens there.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float = 60.0,
        max_retries: int = 6,
        key_variable: str = "AIMLAPI_API_KEY",
        transport: httpx.BaseTransport | None = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        headers = {**({"Authorization": f"Bearer {api_key}"} if api_key else {}), **(extra_headers or {})}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.deadline = deadline
        self.key_variable = key_variable
        self.health = ProviderHealth()
        self.learned: LearnedLimits | None = None  # the limits its x-ratelimit-* headers announced last
        self.on_throttled: Callable[[float], None] | None = None  # told of each 429 (seconds to hold off)
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=_timeout(timeout, timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def post_json(
        self, path: str, body: dict[str, Any], deadline: float | None = None, policy: CallPolicy | None = None
    ) -> Any:
        """``POST path``. A generation (chat) that timed out is not sent again unless ``policy`` says so."""
        policy = policy or CallPolicy(resend_after_timeout=not path.endswith(GENERATION_PATHS))
        return self._with_retries("POST", path, body, policy if deadline is None else _with_deadline(policy, deadline))

    def get_json(self, path: str, deadline: float | None = None) -> Any:
        return self._with_retries("GET", path, None, CallPolicy(deadline=deadline))

    def _with_retries(self, method: str, path: str, body: dict[str, Any] | None, policy: CallPolicy) -> Any:
        """The retry policy: attempts until one succeeds, the retries run out, or the next wait would pass the
        deadline. A refused connection is retried only briefly; answers that cannot succeed raise at once, and so
        does a timeout the policy does not resend."""
        deadline = policy.deadline or self.deadline
        retries = self.max_retries if policy.retries is None else policy.retries
        started = time.monotonic()
        ends_at = started + deadline
        refused = attempts = timeouts = 0
        last = _Failure("no attempt made")
        while attempts <= retries:
            attempts += 1
            # after each timeout the next attempt waits twice as long (capped by the deadline), like TCP's
            # retransmission timer: the server may be busy with the abandoned request and answer this one later
            read = self.timeout * 2**timeouts
            outcome = self._attempt(method, path, body, read, max(ends_at - time.monotonic(), 0.001), attempts)
            timeouts += outcome.timed_out if isinstance(outcome, _Failure) else 0
            if isinstance(outcome, _Success):
                self.health.record(True)
                return outcome.body
            last = outcome
            if outcome.timed_out and not policy.resend_after_timeout:
                raise self._timed_out(method, path, attempts, policy)
            if outcome.refused is not None:
                refused += 1
                if refused > REFUSED_RETRIES or attempts > retries:
                    raise self._unreachable(outcome.refused, method, path, attempts) from outcome.refused
                delay = REFUSED_DELAY_SECONDS * refused
            else:
                delay = backoff_delay(attempts - 1, outcome.retry_after)
            if attempts > retries or time.monotonic() + delay >= ends_at:
                break
            log.warning("provider %s %s failed (%s); retry %d in %.2fs", method, path, last.problem, attempts, delay)
            time.sleep(delay)
        self.health.record(False, last.problem)
        raise ProviderUnavailableError(
            f"{method} {self.base_url}{path} failed after {attempts} attempts in {time.monotonic() - started:.1f} s "
            f"(deadline {deadline:.0f} s): {last.problem}. {policy.consequence}",
            last.status,
            method=method,
            url=self.base_url + path,
            attempts=attempts,
        )

    def _timed_out(self, method: str, path: str, attempts: int, policy: CallPolicy) -> ProviderTimeoutError:
        problem = f"no answer within {self.timeout:.0f} s (SEARCHSVC_REQUEST_TIMEOUT)"
        self.health.record(False, problem)
        return ProviderTimeoutError(
            f"{method} {self.base_url}{path}: {problem}; the server may still be working on it, so the same request "
            f"was not sent again. {policy.consequence}",
            method=method,
            url=self.base_url + path,
            attempts=attempts,
        )

    def _attempt(
        self, method: str, path: str, body: dict[str, Any] | None, read: float, remaining: float, attempt: int
    ) -> _Success | _Failure:
        """One request, waiting up to ``read`` seconds for an answer (never past ``remaining``): its parsed
        body, or what went wrong (raises for answers no retry can fix)."""
        try:
            response = self._client.request(method, path, json=body, timeout=_timeout(read, remaining))
        except httpx.ConnectError as exc:
            return _Failure(f"connection failed ({exc})", refused=exc)
        except httpx.ReadTimeout as exc:
            return _Failure(f"timed out ({type(exc).__name__})", timed_out=True)
        except httpx.TimeoutException as exc:
            return _Failure(f"timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return _Failure(f"connection failed ({exc!r})")
        self.learned = parse_rate_headers(response.headers) or self.learned
        if response.status_code >= 300:
            self._raise_unless_retryable(response, method, path, attempt)
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if response.status_code == 429 and self.on_throttled is not None:
                self.on_throttled(retry_after if retry_after is not None else backoff_delay(attempt - 1, None))
            problem = f"HTTP {response.status_code}: {_error_text(response)}"
            return _Failure(problem, retry_after=retry_after, status=response.status_code)
        try:
            return _Success(response.json())
        except ValueError:
            return _Failure("the response body is not valid JSON")

    def _unreachable(self, exc: Exception, method: str, path: str, attempts: int) -> ProviderUnavailableError:
        problem = f"cannot connect to {self.base_url} ({exc})"
        self.health.record(False, problem)
        return ProviderUnavailableError(
            f"{problem}: is the server running? Check SEARCHSVC_BASE_URL. Nothing was stored",
            method=method,
            url=self.base_url + path,
            attempts=attempts,
        )

    def _raise_unless_retryable(self, response: httpx.Response, method: str, path: str, attempt: int) -> None:
        status = response.status_code
        where = {"method": method, "url": self.base_url + path, "attempts": attempt}
        if status in (401, 403):
            self.health.record(False, f"HTTP {status}: the API key was refused")
            raise ProviderAuthError(
                f"the API at {self.base_url} rejected the API key (HTTP {status}: {_error_text(response)}); "
                f"set a valid key in {self.key_variable}",
                status,
                **where,
            )
        if status not in RETRY_STATUSES:
            self.health.record(True)  # it answered: reachable, the request was wrong
            raise ProviderError(
                f"{method} {self.base_url}{path} returned HTTP {status}: {_error_text(response)}",
                status,
                provider_code=_error_code(response),
                **where,
            )

    def stream_chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield parsed SSE ``data:`` events of a streaming chat completion (no retry once started)."""
        return self.stream_events("/chat/completions", {**body, "stream": True}, last=None)

    def stream_events(self, path: str, body: dict[str, Any], last: str | None) -> Iterator[dict[str, Any]]:
        """Parsed SSE ``data:`` events of a streamed ``POST path`` (no retry once started). The stream ends at
        ``data: [DONE]`` (OpenAI), or after the event whose ``type`` is ``last`` (Anthropic's message_stop);
        a stream that stops before is a cut answer."""
        url = self.base_url + path
        try:
            stream = self._client.stream("POST", path, json=body)
            response = stream.__enter__()
        except httpx.ConnectError as exc:
            raise self._unreachable(exc, "POST", path, 1) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                f"the stream at {url} failed to start: {exc!r}", method="POST", url=url, attempts=1
            ) from exc
        with contextlib.ExitStack() as cleanup:
            cleanup.push(stream)
            if response.status_code >= 300:
                response.read()
                self._raise_unless_retryable(response, "POST", path, 1)
                raise ProviderUnavailableError(
                    f"chat stream refused: HTTP {response.status_code}: {_error_text(response)}",
                    response.status_code,
                    method="POST",
                    url=url,
                    attempts=1,
                )
            self.health.record(True)
            try:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError as exc:
                        raise ProviderResponseError(f"malformed event in chat stream: {data[:200]!r}") from exc
                    if isinstance(event, dict) and (event.get("error") or event.get("type") == "error"):
                        raise ProviderResponseError(f"the API sent an error inside the stream: {_event_error(event)}")
                    yield event
                    if last is not None and isinstance(event, dict) and event.get("type") == last:
                        return
            except httpx.TransportError as exc:
                raise ProviderResponseError(f"the chat stream broke off: {exc!r}; the answer was cut") from exc
        ending = "[DONE]" if last is None else last
        raise ProviderResponseError(f"the chat stream ended without {ending}; the answer was cut")


def _with_deadline(policy: CallPolicy, deadline: float) -> CallPolicy:
    return CallPolicy(deadline, policy.retries, policy.resend_after_timeout, policy.consequence)


def _timeout(read: float, remaining: float) -> httpx.Timeout:
    """Per-attempt limits: never past the call's remaining deadline; connecting gets a few seconds."""
    return httpx.Timeout(min(read, remaining), connect=min(CONNECT_TIMEOUT_SECONDS, remaining))


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


def _error_code(response: httpx.Response) -> str | None:
    """OpenAI's ``error.code`` (or ``error.type``) of an error response, when it has one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return str(code)[:100] if code else None


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


def _event_error(event: dict[str, Any]) -> str:
    """The message of an error event (OpenAI's ``{"error": {...}}``, Anthropic's ``{"type": "error", ...}``)."""
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:500]
    return str(error or event)[:500]
