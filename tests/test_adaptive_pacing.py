"""Pacing learned from the API (issue 18, part 5): limits read from x-ratelimit-* headers when none is
configured, a 429 holding every request off rather than one, chat calls paced too. Against the fake API,
which enforces a tokens-per-minute bucket and announces it in its headers as OpenAI does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from searchsvc.providers.rate_limits import parse_duration, parse_rate_headers
from searchsvc.runtime import QueryProviders
from searchsvc.store import Store
from tests.conftest import MODEL, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.ingest_lead


def _notes(folder: Path, count: int, words: int) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        body = " ".join(f"w{n}x{m}" for m in range(words))
        (folder / f"note-{n:03d}.md").write_text(f"# Note {n}\n\n{body}\n")
    return folder


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("20ms", 0.02), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("7", 7.0), ("soon", None), ("", None)],
)
def test_reset_times_as_apis_write_them(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_limits_are_read_from_the_headers_and_absent_ones_are_none() -> None:
    learned = parse_rate_headers({"x-ratelimit-limit-tokens": "60000", "x-ratelimit-remaining-tokens": "59000",
                                  "x-ratelimit-reset-tokens": "1s"})  # fmt: skip
    assert learned is not None and (learned.tokens_per_minute, learned.remaining_tokens) == (60000, 59000)
    assert learned.requests_per_minute is None and parse_rate_headers({"content-type": "text/plain"}) is None


def test_an_ingest_paces_itself_to_the_limit_the_api_announces_and_is_never_refused(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.tokens_per_minute = 6000  # nothing configured on our side
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, batch_max_inputs=4, max_in_flight=1)
    started = time.monotonic()
    report = run_ingest(settings, _notes(tmp_path / "notes", 16, 120))  # ~7,800 tokens: ~18 s at 6,000 a minute
    elapsed = time.monotonic() - started

    assert fake_openai.rate_limited == 0  # learned after the first answer, the limit was never hit
    assert report.tokens_embedded > 7000
    bound = (report.tokens_embedded - 6000) / (6000 / 60)  # the server's bucket starts with a minute of tokens
    assert elapsed >= 0.9 * bound, (elapsed, bound)  # paced, not merely fast


def test_a_429_holds_every_request_off_for_the_time_the_api_asked(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    # The first request is answered alone (its headers tell the limits); then up to four go out together, and the
    # first of those is refused for 2 s after 0.5 s: the requests sent after that refusal wait those 2 s, not
    # only its own retry. Requests sent while the refusal was on its way are in flight, not held.
    answered_in = 0.5
    fake_openai.faults += [Fault("sleep", seconds=0.0, only="/embeddings"),
                           Fault("status", status=429, seconds=answered_in, headers={"Retry-After": "2"},
                                 only="/embeddings")]  # fmt: skip
    fake_openai.latency = 0.2
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, batch_max_inputs=2, max_in_flight=4)

    report = run_ingest(settings, _notes(tmp_path / "notes", 24, 10))

    assert report.added == 24
    sent = sorted(r.at for r in fake_openai.embedding_requests())
    refused_at = sent[1]
    refusal_answered = refused_at + answered_in
    in_flight = [t for t in sent[2:] if t < refusal_answered]
    held = [t for t in sent[2:] if t >= refusal_answered + 0.1]  # 0.1 s: the refusal's own trip back
    timeline = [round(t - sent[0], 2) for t in sent]
    assert in_flight, timeline  # others went out beside the refused one
    assert held and min(held) >= refusal_answered + 1.9, timeline


def test_a_chat_429_holds_the_other_chat_calls_too(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chat_model="fake-chat")
    store = Store(settings)
    providers = QueryProviders.open(settings, store)
    chat = providers.chat
    assert chat is not None and chat.pacer is not None
    fake_openai.faults.append(Fault("status", status=429, headers={"Retry-After": "1.5"}, only="/chat/completions"))
    try:
        first = threading.Thread(target=chat.complete, args=([{"role": "user", "content": "one"}],))
        first.start()
        time.sleep(0.3)  # the first call has had its 429 and waits to retry
        chat.complete([{"role": "user", "content": "two"}])
        first.join(10)
    finally:
        providers.close()
        store.close()
    calls = sorted(r.at for r in fake_openai.chat_requests())
    assert len(calls) == 3 and calls[1] - calls[0] >= 1.4 and calls[2] - calls[0] >= 1.4, calls
