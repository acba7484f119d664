"""Is an API reachable? Answered from the outcome of real calls, else from a free, cached probe."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from searchsvc.errors import ProviderError
from searchsvc.providers.http_client import OpenAICompatibleClient

PROBE_DEADLINE_SECONDS = 3.0


class ProviderProbe:
    """Readiness of one API: the latest call's outcome when recent, else ``GET /models`` (never a paid call).

    A failed call alone does not make the service unready (one request that ran out of retries says
    little about the next): it is confirmed by a probe. Probes happen at most once per ``interval``
    seconds, however often readiness is asked.
    """

    def __init__(self, client: OpenAICompatibleClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self._lock = threading.Lock()
        self._probed_at = float("-inf")

    def _needs_probe(self) -> bool:
        health, now = self.client.health, time.monotonic()
        stale = health.ok is None or now - health.at > self.interval
        unconfirmed = health.ok is False and now - self._probed_at > self.interval
        return stale or unconfirmed

    def state(self) -> dict[str, Any]:
        health = self.client.health
        if self._needs_probe():
            with self._lock:
                if self._needs_probe():
                    self._probe()
                    self._probed_at = time.monotonic()
        return {
            "base_url": self.client.base_url,
            "reachable": bool(health.ok),
            "problem": health.problem or None,
            "checked_seconds_ago": round(time.monotonic() - health.at, 1),
        }

    def _probe(self) -> None:
        # The client records what happened: an answer of any kind (even a 404) means reachable.
        with contextlib.suppress(ProviderError):
            self.client.get_json("/models", deadline=PROBE_DEADLINE_SECONDS)
