"""Client-side pacing to an API's tokens-per-minute limit: no request is refused."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI


def test_paced_ingest_never_hits_the_servers_limit(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "redis.md").write_text((SAMPLE_DATA / "markdown/redis/README.md").read_text()[:2500])
    fake_openai.tokens_per_minute = 500  # the document is a little over one minute's allowance
    settings = remote_settings(
        tmp_path, fake_openai, embedding_model=MODEL, tokens_per_minute=500, batch_max_inputs=2, max_in_flight=2
    )
    started = time.monotonic()
    report = run_ingest(settings, folder)
    assert report.tokens_embedded > 500 and fake_openai.rate_limited == 0
    assert time.monotonic() - started >= (report.tokens_embedded - 500) / (500 / 60) * 0.9
