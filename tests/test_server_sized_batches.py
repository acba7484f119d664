"""Requests sized for the server, and answers checked (issue 19, items 2, 3 and 10): a batch that got no answer
in time is split, not sent again as it was, and later batches start smaller; a generation that timed out is not
repeated; a search against an API that keeps failing gives up within seconds, saying nothing was searched; one
vector per token is refused with a message that says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ingest.batch_window import SLOW_START, BatchWindow
from ingest.embedding import embed_pending
from searchsvc.api.app import create_app
from searchsvc.errors import ProviderResponseError, ProviderTimeoutError
from searchsvc.providers import embedding_limits, make_embedding_provider
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider
from searchsvc.providers.token_counting import TiktokenCounter
from tests.conftest import MODEL, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault


def _notes(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"note-{n:03d}.md").write_text(f"# Note {n}\n\nredis note {n} about memory w{n}\n")
    return folder


def test_a_batch_that_times_out_is_split_and_the_next_ones_start_smaller(tmp_path: Path, fake_openai) -> None:
    # 0.03 s a text: the first request (64 texts, ~1.9 s) cannot be answered within the 1 s timeout.
    fake_openai.latency_per_input = 0.03
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, batch_max_inputs=2048, request_timeout=1,
                               collection="docs")  # fmt: skip

    report = run_ingest(settings, _notes(tmp_path / "notes", 150))

    assert report.added == 150 and not report.failed
    sizes = [len(r.body["input"]) for r in fake_openai.embedding_requests()]
    assert sizes[0] <= SLOW_START and sizes[0] * 0.03 > 1.0 and report.batches_split >= 1, sizes
    bodies = [tuple(r.body["input"]) for r in fake_openai.embedding_requests()]
    assert len(set(bodies)) == len(bodies), "a request was sent again as it was"
    # A split request's texts go out again in later, smaller ones; an answered one's never do. (Splits are not
    # assumed to come first: on a loaded machine a later request near the timeout can be split too.)
    answered = [len(body) for n, body in enumerate(bodies) if not any(body[0] in later for later in bodies[n + 1 :])]
    assert max(answered) * 0.03 < 1.0, sizes  # after the split, every request fits the timeout
    assert sum(answered) == 150 and report.embedding_requests == len(answered)
    assert report.batches_split == len(sizes) - len(answered)


def test_the_window_grows_back_on_fast_answers_up_to_the_batch_size() -> None:
    window = BatchWindow(most=2048, timeout=60.0)
    window.timed_out(64)
    assert window.size == 32
    window.answered(32, 0.5)  # 64 texts a second: 960 would fit in a quarter of the timeout; growth doubles
    assert window.size == 64
    for _ in range(10):
        window.answered(window.size, 0.5)
    assert window.size == 2048
    window.answered(2048, 40.0)  # slow: 51 texts a second, so 768 in 15 s
    assert window.size == 768
    assert BatchWindow(most=100, timeout=None).size == 100  # the local model: no timeout, no slow start


def test_a_chat_generation_that_timed_out_is_not_sent_again(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chat_model="fake-chat", collection="docs")
    run_ingest(settings, _notes(tmp_path / "notes", 3))
    slow_chat = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chat_model="fake-chat",
                                collection="docs", chat_request_timeout=0.5)  # fmt: skip
    with TestClient(create_app(slow_chat)) as client:
        fake_openai.queue(Fault("sleep", seconds=1.5, only="/chat/completions"))
        before = len(fake_openai.chat_requests())
        response = client.post("/v1/ask", json={"question": "What about redis memory?", "min_score": -1})
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "provider_timeout" and "not sent again" in error["message"]
    assert len(fake_openai.chat_requests()) - before == 1


def test_a_search_against_an_api_that_keeps_failing_gives_up_within_seconds(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=6, collection="docs")
    run_ingest(settings, _notes(tmp_path / "notes", 3))
    with TestClient(create_app(settings)) as client:
        fake_openai.queue(*[Fault("status", 500, only="/embeddings")] * 10)
        before = len(fake_openai.embedding_requests())
        started = time.monotonic()
        response = client.post("/v1/search", json={"query": "a question never asked", "mode": "vector"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503 and elapsed < 4, (response.status_code, elapsed)
    message = response.json()["error"]["message"]
    assert "nothing was searched" in message and "Nothing was stored" not in message
    assert len(fake_openai.embedding_requests()) - before == 3  # the first attempt and SEARCHSVC_QUERY_RETRIES=2


def test_one_vector_per_token_is_refused_with_a_message_that_says_so(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    fake_openai.queue(Fault("per_token", only="/embeddings"))
    with pytest.raises(ProviderResponseError, match=r"one per token.*--pooling mean.*nothing was stored"):
        run_ingest(settings, _notes(tmp_path / "notes", 2))


def test_the_window_shares_the_time_among_the_requests_in_flight() -> None:
    # A server that embeds 2 texts a second, one request at a time, 4 requests in flight: each gets 15 s / 4
    # of the server's time, so the last of four is answered in about 15 s, a quarter of the 60 s timeout.
    window = BatchWindow(most=2048, timeout=60.0)
    window.answered(64, 32.0, in_flight=4)
    assert window.size == 7  # 2 texts a second * 15 s / 4


def test_the_window_plans_for_the_deadline_when_it_cuts_a_request_sooner_than_the_timeout(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # A request is cut at min(timeout, the call's remaining deadline): a 300 s timeout under a 120 s deadline
    # gives a request 120 s, so the window must size requests for 120 s, not 300.
    fake = fake_openai
    settings = remote_settings(tmp_path, fake, request_timeout=300.0, request_deadline=120.0)
    assert embedding_limits(settings).request_timeout == 120.0
    assert embedding_limits(remote_settings(tmp_path, fake, request_timeout=30.0)).request_timeout == 30.0


def test_a_single_text_the_server_answers_late_gets_a_longer_wait_on_its_retry(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Every answer takes 1.5 s against a 1 s timeout: a single text cannot be split, so it is sent again, and
    # each retry waits twice as long as the attempt before (1 s, then 2 s), as TCP's retransmission timer does.
    fake_openai.latency = 1.5
    provider = make_embedding_provider(remote_settings(tmp_path, fake_openai, embedding_model=MODEL,
                                                       request_timeout=1.0, max_retries=1))  # fmt: skip
    try:
        vectors = provider.embed_documents(["a text the server is slow to embed"])
    finally:
        provider.close()
    assert vectors.shape[0] == 1 and len(fake_openai.embedding_requests()) == 2


class _BusyServer(EmbeddingProvider):
    """A stand-in for a server that answers 8 texts or fewer in 0.03 s and times out on more after 0.2 s,
    recording how many of our requests were in flight when each was sent, and each outcome, in order. The
    times keep answers and timeouts apart, so the order seen here is the order the caller learns them in."""

    kind, model = "openai", "busy"

    def __init__(self) -> None:
        self.limits = EmbeddingLimits(64, 512, 100_000, max_in_flight=4, request_timeout=0.2)
        self.tokenizer = TiktokenCounter("cl100k_base")
        self.events: list[tuple[str, int]] = []
        self.active = 0
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return 4

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.active += 1
            self.events.append(("sent", self.active))
        time.sleep(0.2 if len(texts) > 8 else 0.03)
        with self._lock:
            self.active -= 1
            self.events.append(("timeout" if len(texts) > 8 else "answer", len(texts)))
        if len(texts) > 8:
            raise ProviderTimeoutError("no answer within 0.2 s")
        return np.ones((len(texts), 4), dtype=np.float32)


def test_after_a_timeout_requests_go_one_at_a_time_until_the_server_answers_again() -> None:
    # Requests sent next to one the server is still computing only queue behind it (and time out in turn).
    server, stored = _BusyServer(), []
    pending = {f"h{n}": (f"text {n}", 3) for n in range(200)}
    failed = embed_pending(server, pending, lambda batch, vectors: stored.extend(batch.hashes))
    assert not failed and sorted(stored) == sorted(pending)
    behind, sent_behind = False, 0
    for event, count in server.events:
        if event == "sent" and behind:
            assert count == 1, server.events
            sent_behind += 1
        behind = event == "timeout" or (behind and event != "answer")
    assert ("timeout", 64) in server.events and sent_behind >= 1, server.events
    assert max(count for event, count in server.events if event == "sent") == 4  # all four before the timeout
