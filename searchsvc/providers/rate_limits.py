"""Rate limits an API announces in its ``x-ratelimit-*`` headers (OpenAI's, copied by many servers):
the limits themselves, what remains of them and when they reset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


class Pacer(Protocol):
    """Paces requests to rate limits: ``acquire`` blocks until ``tokens`` may be sent; seconds waited."""

    def acquire(self, tokens: int) -> float: ...


@dataclass(frozen=True)
class LearnedLimits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_seconds: float | None = None
    reset_tokens_seconds: float | None = None


def parse_rate_headers(headers: Mapping[str, str]) -> LearnedLimits | None:
    """The limits in a response's headers; None when it announces none."""
    found = LearnedLimits(
        requests_per_minute=_int(headers.get("x-ratelimit-limit-requests")),
        tokens_per_minute=_int(headers.get("x-ratelimit-limit-tokens")),
        remaining_requests=_int(headers.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_int(headers.get("x-ratelimit-remaining-tokens")),
        reset_requests_seconds=parse_duration(headers.get("x-ratelimit-reset-requests")),
        reset_tokens_seconds=parse_duration(headers.get("x-ratelimit-reset-tokens")),
    )
    return found if found.requests_per_minute or found.tokens_per_minute else None


def parse_duration(text: str | None) -> float | None:
    """``6m0s``, ``1.5s``, ``20ms``, ``1h2m`` or plain seconds, in seconds; None if unreadable."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _int(text: str | None) -> int | None:
    try:
        value = int(float(text)) if text else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None
