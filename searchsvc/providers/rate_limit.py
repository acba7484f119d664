"""A token bucket for an API's tokens-per-minute limit, so requests are paced instead of refused."""

from __future__ import annotations

import threading
import time

# Paced a little under the limit: the server's clock starts counting when a request arrives, ours when
# it leaves, and arrival delays vary (a loaded machine, a busy network), so pacing at exactly the limit
# still gets the occasional 429 (seen in tests/test_rate_limit.py under load).
MARGIN = 0.95


class TokenBucket:
    """Holds up to one minute of tokens, refilled continuously at ``per_minute / 60`` per second (both
    scaled by ``MARGIN``)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute) * MARGIN
        self.rate = per_minute * MARGIN / 60.0
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Block until ``tokens`` may be spent (never more than the capacity); returns seconds waited."""
        wanted = min(float(tokens), self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= wanted:
                    self._tokens -= wanted
                    return waited
                pause = (wanted - self._tokens) / self.rate
            time.sleep(pause)
            waited += pause
