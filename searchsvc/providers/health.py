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

    Probes happen at most once per ``interval`` seconds, however often readiness is asked.
    """

    def __init__(self, client: OpenAICompatibleClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self._lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        health = self.client.health
        if health.ok is None or time.monotonic() - health.at > self.interval:
            with self._lock:
                if health.ok is None or time.monotonic() - health.at > self.interval:
                    self._probe()
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
