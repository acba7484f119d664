"""One tokens-per-minute budget for every process embedding with a provider (shared through SQL):
two ingests at once stay together under the API's limit instead of each spending all of it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from searchsvc.storage.rate_budget import SharedTokenBucket, budget_key
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, make_settings, remote_settings
from tests.fake_openai import FakeOpenAI, token_count


def test_reservations_from_two_connections_draw_on_one_budget(tmp_path: Path) -> None:
    """A minute's burst, then the rate, whichever process reserves: the second store sees the first's spend."""
    settings = make_settings(tmp_path)
    first, second = Store(settings, create=True), Store(settings)
    try:
        key, clock = budget_key("model m at http://127.0.0.1:1"), lambda: 1_000_000.0  # time stands still
        one, two = (SharedTokenBucket(store.session, key, 6000, clock=clock) for store in (first, second))
        assert one.reserve(60.0) == 0.0  # a full minute's tokens at once (rate 95 tokens/s after the margin)
        assert two.reserve(2.0) == 2.0  # then two seconds' worth waits two seconds, in the other connection
        assert one.reserve(2.0) == 4.0  # and the next queues behind it
        later = SharedTokenBucket(second.session, key, 6000, clock=lambda: 1_000_010.0)
        assert later.reserve(2.0) == 0.0  # ten seconds on, the budget has refilled past what is owed
        other = SharedTokenBucket(first.session, budget_key("another model"), 6000, clock=clock)
        assert other.reserve(60.0) == 0.0  # each provider has its own budget
    finally:
        first.close()
        second.close()


class Cancelled(Exception):
    pass


def test_a_long_wait_for_the_budget_is_cut_short_by_a_cancelled_job(tmp_path: Path) -> None:
    """A wait of half a minute is slept in one-second slices with a progress report after each, so a job
    cancelled (or a server stopping) while it waits leaves within a second, not after the whole wait."""
    store = Store(make_settings(tmp_path), create=True)
    slept: list[float] = []
    reports = []

    def report() -> None:
        reports.append(len(slept))
        if len(reports) == 2:
            raise Cancelled  # what a job's progress raises once the job was cancelled

    try:
        bucket = SharedTokenBucket(store.session, budget_key("m"), 6000, sleep=slept.append, between=report)
        assert bucket.acquire(6000) == 0.0 and slept == []  # a minute of tokens at once: no wait
        with pytest.raises(Cancelled):
            bucket.acquire(3000)  # half a minute's tokens: about 31.6 s to wait
        assert slept == [1.0, 1.0] and reports == [1, 2]
    finally:
        store.close()


def _texts(tmp_path: Path, name: str, source: str, chars: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "doc.md").write_text((SAMPLE_DATA / source).read_text()[:chars])
    return folder


def test_two_ingests_at_once_share_the_tokens_per_minute_limit(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Each ingest alone fits in a minute's burst; together they do not, so they must pace as one.
    (With a budget per process both burst at once and the API refuses the excess with 429s.)"""
    limit = 3000
    fake_openai.tokens_per_minute = limit
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    Store(settings, create=True).close()
    env = cli_env(settings, fake_openai, SEARCHSVC_TOKENS_PER_MINUTE=str(limit), SEARCHSVC_BATCH_MAX_INPUTS="2")
    folders = [
        _texts(tmp_path, "redis", "markdown/redis/README.md", 9000),
        _texts(tmp_path, "zstd", "markdown/zstd/README.md", 9000),
    ]
    started = time.monotonic()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "searchsvc", "ingest", str(folder), "--collection", folder.name, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    outputs = [run.communicate(timeout=180) for run in runs]
    elapsed = time.monotonic() - started
    assert all(run.returncode == 0 for run in runs), [err[-1000:] for _, err in outputs]
    spent = sum(token_count(text) * times for text, times in fake_openai.embedded_inputs.items())
    assert spent > limit, f"the two ingests must need more than one minute's burst ({spent} tokens)"
    assert fake_openai.rate_limited == 0, f"{fake_openai.rate_limited} requests refused: the budget was not shared"
    paced = (spent - limit) / (limit / 60)  # the least time the API's own limit allows for these tokens
    assert elapsed >= paced * 0.9, f"{spent} tokens in {elapsed:.1f} s; the limit allows no less than {paced:.1f} s"
