"""The token ledger (issue 18, part 3): every embedding and chat call's model, tokens, requests, cost,
collection and purpose in SQL; `searchsvc usage`, GET /v1/usage and the Prometheus counters agree. Against
the fake API, whose chat completions report 100 prompt tokens each."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI
from tests.servers import wait_until

pytestmark = pytest.mark.ingest_lead

EMBED_PRICE, CHAT_PRICE = 0.5, (1.0, 2.0)  # USD per million tokens


def _settings(tmp_path: Path, fake: FakeOpenAI) -> Settings:
    return remote_settings(tmp_path, fake, embedding_model=MODEL, collection="docs", chat_model="fake-chat",
                           embedding_prices={MODEL: EMBED_PRICE}, chat_prices={"fake-chat": CHAT_PRICE})  # fmt: skip


def _by(api: TestClient, by: str) -> dict[str | None, dict[str, Any]]:
    body = api.get("/v1/usage", params={"by": by}).json()
    return {row[by]: row for row in body["data"]}


def test_ingest_searches_and_answers_are_recorded_and_every_view_agrees(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = _settings(tmp_path, fake_openai)
    report = run_ingest(settings, SAMPLE_DATA / "markdown" / "pyenv")
    with TestClient(create_app(settings)) as api:
        for query in ("install python", "pyenv shims", "install python"):  # the repeat is not paid again
            assert api.post("/v1/search", json={"query": query, "k": 3}).status_code == 200
        asked = api.post(
            "/v1/ask", json={"question": "How do I install pyenv?", "conversation_id": "t", "min_score": -1}
        )
        assert asked.status_code == 200, asked.text
        follow = api.post("/v1/ask", json={"question": "And on macOS?", "conversation_id": "t", "min_score": -1})
        assert follow.status_code == 200
        embedded = api.post("/v1/embeddings", json={"model": "docs", "input": ["two words", "three more words"]})
        assert embedded.status_code == 200, embedded.text
        purposes = wait_until(lambda: _by(api, "purpose"), lambda p: len(p) == 5, 10, "five purposes recorded")
        metrics = api.get("/metrics").text

    ingest, query, answer, rewrite = (purposes[p] for p in ("ingest", "query", "answer", "rewrite"))
    assert (ingest["input_tokens"], ingest["requests"]) == (report.tokens_embedded, report.embedding_requests)
    assert ingest["cost_usd"] == pytest.approx(report.tokens_embedded * EMBED_PRICE / 1e6, abs=1e-6)
    # two distinct searches, plus the two questions (each embedded to search); the repeat came from memory
    assert query["calls"] == 4 and query["rows_without_price"] == 0
    assert answer["calls"] == 2 and answer["input_tokens"] == 200  # the fake's usage: 100 prompt tokens a call
    expected = (answer["input_tokens"] * CHAT_PRICE[0] + answer["output_tokens"] * CHAT_PRICE[1]) / 1e6
    assert answer["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert rewrite["calls"] == 1
    assert purposes["embeddings"]["input_tokens"] == embedded.json()["usage"]["prompt_tokens"]

    for purpose, row in purposes.items():  # Prometheus reads the same ledger
        found = re.search(
            rf'searchsvc_usage_tokens_total{{model="[^"]+",purpose="{purpose}",way="input"}} (\S+)', metrics
        )
        assert found is not None and float(found.group(1)) == row["input_tokens"], (purpose, metrics[-2000:])

    with TestClient(create_app(settings)) as api:
        by_collection = _by(api, "collection")
    assert by_collection["docs"]["calls"] == sum(
        purposes[p]["calls"] for p in ("ingest", "query", "answer", "embeddings")
    )
    assert by_collection[None]["calls"] == rewrite["calls"]  # a rewrite is not tied to a collection's sources

    command = [sys.executable, "-m", "searchsvc", "usage", "--by", "purpose", "--json", "--since", "1d"]
    done = subprocess.run(command, env=cli_env(settings, fake_openai), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from_cli = {row["purpose"]: row for row in json.loads(done.stdout)["data"]}
    assert from_cli == {purpose: {k: row[k] for k in from_cli[purpose]} for purpose, row in purposes.items()}


def test_a_refused_since_is_a_clear_400_and_an_empty_ledger_is_empty(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    with TestClient(create_app(_settings(tmp_path, fake_openai))) as api:
        refused = api.get("/v1/usage", params={"since": "last tuesday"})
        assert refused.status_code in (400, 422) and "7d" in refused.json()["error"]["message"]
        assert api.get("/v1/usage", params={"since": "7d", "by": "day"}).json()["data"] == []
        assert api.get("/v1/usage", params={"by": "colour"}).status_code == 422
