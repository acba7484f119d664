"""Tokens-per-minute pacing shared through SQL, so every process embedding with one provider (server job
runners, CLI ingests, Celery workers on other machines) stays together under the provider's one limit.

The generic cell rate algorithm, one row per provider: ``ready_at`` moves ``tokens / rate`` seconds later
with each reservation (one atomic UPDATE ... RETURNING, serialised by the row lock), and the caller
sends once ``ready_at`` is within one minute's burst of now: a minute of tokens at once, then the
rate, a little under the limit (``MARGIN``). Reservations are first come, first served;
one whose process dies before sending leaves its tokens unspent (slower, never over the limit).
Clocks: each process uses its own; hosts kept in sync by NTP (milliseconds apart) change nothing that
matters, a host whose clock is off by seconds paces the others by that much too slowly or fast."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from searchsvc.storage.repository import dialect_insert
from searchsvc.storage.schema import RateBudget

# Paced a little under the limit: the server's clock starts counting when a request arrives, ours when
# it leaves, and arrival delays vary (a loaded machine, a busy network), so pacing at exactly the limit
# still gets the occasional 429 (seen in tests/test_rate_limit.py under load).
MARGIN = 0.95
BURST_SECONDS = 60.0  # a full bucket holds one minute of tokens
WAIT_SLICE_SECONDS = 1.0  # a wait is cut into slices this long, with ``between`` called after each


def budget_key(provider_description: str) -> str:
    """The row for a provider: the same API and model share one limit."""
    return hashlib.sha256(provider_description.encode()).hexdigest()[:32]


class SharedTokenBucket:
    """``acquire(tokens)`` blocks until the shared budget allows ``tokens``; returns seconds waited."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        key: str,
        per_minute: int,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        between: Callable[[], None] = lambda: None,
    ) -> None:
        """``between`` is called after each second of a wait: a job's progress report, which raises when the
        job was cancelled or its server is stopping (a wait can last a minute with a low limit)."""
        self.sessions, self.key, self.sleep, self.clock, self.between = sessions, key, sleep, clock, between
        self.rate = per_minute * MARGIN / 60.0  # tokens per second
        self.capacity = self.rate * BURST_SECONDS

    def acquire(self, tokens: int) -> float:
        wait = self.reserve(min(float(tokens), self.capacity) / self.rate)
        slept = 0.0
        while slept < wait:
            step = min(wait - slept, WAIT_SLICE_SECONDS)
            self.sleep(step)
            slept += step
            self.between()
        return wait

    def reserve(self, seconds_of_budget: float) -> float:
        """Moves the provider's ``ready_at`` on; returns how long the caller must wait before sending."""
        with self.sessions() as session:
            first = dialect_insert(session)(RateBudget).values(key=self.key, ready_at=0.0)
            session.execute(first.on_conflict_do_nothing())
            now = self.clock()  # read once the write lock is held (SQLite may have waited for it)
            later = case((RateBudget.ready_at > now, RateBudget.ready_at), else_=now) + seconds_of_budget
            statement = update(RateBudget).where(RateBudget.key == self.key).values(ready_at=later)
            ready_at = session.execute(statement.returning(RateBudget.ready_at)).scalar_one()
            session.commit()
        return max(0.0, float(ready_at) - BURST_SECONDS - now)
