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

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.rate_limits import LearnedLimits
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
        return self.wait(self.reserve(min(float(tokens), self.capacity) / self.rate))

    def wait(self, wait: float) -> float:
        """Sleep ``wait`` seconds in slices, calling ``between`` after each; returns ``wait``."""
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

    def pending(self) -> float:
        """Seconds until this budget lets anything through, read without reserving (no write)."""
        with self.sessions() as session:
            ready_at = session.scalar(select(RateBudget.ready_at).where(RateBudget.key == self.key))
        return max(0.0, float(ready_at or 0.0) - BURST_SECONDS - self.clock())

    def pause(self, seconds: float) -> None:
        """Push the budget ``seconds`` past now: nobody sends until then, then at the rate (no burst)."""
        with self.sessions() as session:
            session.execute(
                dialect_insert(session)(RateBudget).values(key=self.key, ready_at=0.0).on_conflict_do_nothing()
            )
            until = self.clock() + BURST_SECONDS + seconds
            later = case((RateBudget.ready_at > until, RateBudget.ready_at), else_=until)
            session.execute(update(RateBudget).where(RateBudget.key == self.key).values(ready_at=later))
            session.commit()


class AdaptivePacer:
    """An API's requests paced to its tokens- and requests-per-minute limits, through SQL for every process:
    the limits configured, else those its ``x-ratelimit-*`` headers announced once it answered (``learned``).
    A 429 holds every process off for the time the API asked (``pause``), not only the request refused."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        key: str,
        configured: tuple[int | None, int | None],
        learned: Callable[[], LearnedLimits | None],
        between: Callable[[], None] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``configured``: (tokens, requests) per minute, each None to learn it."""
        self.sessions, self.key, self.configured, self.learned = sessions, key, configured, learned
        self.between, self.sleep = between, sleep
        self._buckets: dict[tuple[str, int], SharedTokenBucket] = {}
        self._hold = SharedTokenBucket(sessions, f"{key}:hold", 60, sleep=sleep, between=between)
        self.throttled = False  # a 429 came back (in this process)

    def concurrency(self, wanted: int, answered: bool) -> int:
        """Requests to keep in flight: one until the API has answered (its headers tell its limits, and an
        unpaced burst would overrun them), and one at a time once it refused with no limits known (its
        retries and new requests would otherwise keep colliding); else ``wanted``."""
        if not answered or (self.throttled and self.limits() == (None, None)):
            return 1
        return wanted

    def limits(self) -> tuple[int | None, int | None]:
        """(tokens, requests) per minute in force: configured, else learned, else None (not paced)."""
        learned = self.learned()
        tokens = self.configured[0] or (learned.tokens_per_minute if learned else None)
        requests = self.configured[1] or (learned.requests_per_minute if learned else None)
        return tokens, requests

    def acquire(self, tokens: int) -> float:
        waited = self._hold.wait(self._hold.pending())  # a 429's pause, if one is on (a read, not a write)
        per_minute_tokens, per_minute_requests = self.limits()
        if per_minute_tokens:
            waited += self._bucket("tokens", per_minute_tokens).acquire(tokens)
        if per_minute_requests:
            waited += self._bucket("requests", per_minute_requests).acquire(1)
        return waited

    def _spent(self, what: str, per_minute: int) -> float:
        """What the API said is already used of a limit it announced (its remaining-* header), so a limit
        learned mid-run starts where the API's own count is, not with a full minute to spend."""
        learned = self.learned()
        if learned is None or self.configured[0 if what == "tokens" else 1]:
            return 0.0
        remaining = learned.remaining_tokens if what == "tokens" else learned.remaining_requests
        return float(max(0, per_minute - remaining)) if remaining is not None else 0.0

    def pause(self, seconds: float) -> None:
        self.throttled = True
        self._hold.pause(seconds)

    def _bucket(self, what: str, per_minute: int) -> SharedTokenBucket:
        if (what, per_minute) not in self._buckets:  # a limit learned anew takes over the same row
            key = self.key if what == "tokens" else f"{self.key}:{what}"
            bucket = SharedTokenBucket(self.sessions, key, per_minute, sleep=self.sleep, between=self.between)
            spent = self._spent(what, per_minute)
            if spent and not any(w == what for w, _ in self._buckets):
                bucket.reserve(spent / bucket.rate)
            self._buckets[(what, per_minute)] = bucket
        return self._buckets[(what, per_minute)]


def pacer_for(
    sessions: Callable[[], Session], provider: EmbeddingProvider, between: Callable[[], None] = lambda: None
) -> AdaptivePacer | None:
    """The pacer of an API's embedding requests, shared through SQL with every process using the same API and
    model: its limits as configured, else as its headers announce them; a 429 holds them all off. None for the
    local model. ``between`` runs while waiting (a cancelled job stops waiting within a second)."""
    if provider.kind == "local":
        return None
    configured = (provider.limits.tokens_per_minute, provider.limits.requests_per_minute)
    pacer = AdaptivePacer(sessions, budget_key(provider.describe()), configured, provider.rate_limits, between=between)
    provider.on_throttled(pacer.pause)
    return pacer
