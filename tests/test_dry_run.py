"""A dry run says what an ingestion would embed and cost, per model, and writes and sends nothing
(issue 18, part 2): `searchsvc ingest PATH --dry-run` and POST /v1/ingest-estimates, checked against
the fake API's request log and against what a real run then did."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.ingest_lead

PRICES = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}


def _dry_run(settings: Settings, fake: FakeOpenAI, folder: Path, *args: str, **env: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "searchsvc", "ingest", str(folder), "--dry-run", "--json", "-c", "docs", *args]
    done = subprocess.run(command, env=cli_env(settings, fake, **env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE_DATA / "markdown" / "redis", tmp_path / "redis"))


def test_a_dry_run_on_a_fresh_install_writes_nothing_sends_nothing_and_predicts_the_run(
    tmp_path: Path, fake_openai: FakeOpenAI, folder: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    estimate = _dry_run(settings, fake_openai, folder, SEARCHSVC_EMBEDDING_PRICES=json.dumps({MODEL: 0.5}))

    assert fake_openai.requests == [] and not (settings.data_dir / "searchsvc.db").exists()
    [row] = estimate["models"]
    report = run_ingest(settings, folder)  # what the run then did
    assert row["model"] == MODEL and row["documents"]["added"] == report.added
    assert (row["chunks"], row["tokens"], row["requests"]) == (report.chunks, report.tokens_embedded,
                                                               report.embedding_requests)  # fmt: skip
    assert row["cost_usd"] == pytest.approx(report.tokens_embedded * 0.5 / 1e6, abs=1e-6)  # to the micro-dollar
    assert row["pages"] == pytest.approx(report.tokens_embedded / 800, abs=0.1)


def test_after_a_run_only_what_changed_is_counted_and_the_cache_is_free(
    tmp_path: Path, fake_openai: FakeOpenAI, folder: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, folder)
    before, sent = table_counts(settings), len(fake_openai.requests)
    (folder / "extra.md").write_text("# Extra\n\nA new page about sorted sets and their scores.\n")

    row = _dry_run(settings, fake_openai, folder)["models"][0]

    assert row["documents"]["added"] == 1 and row["documents"]["unchanged"] == report_count(folder) - 1
    assert row["chunks"] == 1 and row["tokens"] > 0 and row["requests"] == 1
    assert row["cost_usd"] is None and "SEARCHSVC_EMBEDDING_PRICES" in row["note"]  # no price for the fake model
    assert table_counts(settings) == before and len(fake_openai.requests) == sent

    # Another collection with the same model: every text is in the cache already, nothing to pay.
    other = _dry_run(settings, fake_openai, folder, "-c", "other")["models"][0]
    assert other["documents"]["added"] == report_count(folder) and other["chunks"] == other["chunks_cached"] + 1
    assert other["tokens"] == row["tokens"]


def report_count(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*.md"))


def test_the_three_api_models_and_the_local_one_priced_from_the_table(
    tmp_path: Path, fake_openai: FakeOpenAI, folder: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    models = [*PRICES, "local"]
    rows = {
        r["model"]: r
        for r in _dry_run(settings, fake_openai, folder, *(a for m in models for a in ("--model", m)))["models"]
    }

    assert fake_openai.requests == []
    for model, price in PRICES.items():
        assert rows[model]["price_per_million_tokens"] == price and rows[model]["tokens"] > 0
        assert rows[model]["cost_usd"] == pytest.approx(rows[model]["tokens"] * price / 1e6, abs=1e-6)
    local = rows["all-MiniLM-L6-v2"]
    assert local["cost_usd"] == 0 and local["provider"] == "local" and local["chunks"] > 0


def test_with_a_tokens_per_minute_limit_the_time_it_implies(
    tmp_path: Path, fake_openai: FakeOpenAI, folder: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    row = _dry_run(settings, fake_openai, folder, SEARCHSVC_TOKENS_PER_MINUTE="1000")["models"][0]
    assert row["minutes_at_rate_limit"] == pytest.approx(row["tokens"] / 1000, abs=0.01)


def test_estimates_over_http_for_records_files_and_a_path(
    tmp_path: Path, fake_openai: FakeOpenAI, folder: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, ingest_roots=str(tmp_path))
    with TestClient(create_app(settings)) as api:
        records = [{"id": f"r{n}", "text": f"Record {n} about topic{n}."} for n in range(3)]
        by_records = api.post("/v1/ingest-estimates", json={"collection": "docs", "records": records})
        assert by_records.status_code == 200, by_records.text
        row = by_records.json()["models"][0]
        assert (
            row["documents"]["added"] == 3 and row["chunks"] == 3 and by_records.json()["object"] == "ingest_estimate"
        )

        uploaded = api.post(
            "/v1/files", files={"file": ("a.md", b"# A\n\nSome words.\n")}, data={"purpose": "assistants"}
        )
        by_files = api.post("/v1/ingest-estimates", json={"collection": "docs", "file_ids": [uploaded.json()["id"]],
                                                          "models": ["text-embedding-3-large"]})  # fmt: skip
        assert by_files.status_code == 200 and by_files.json()["models"][0]["price_per_million_tokens"] == 0.13

        by_path = api.post("/v1/ingest-estimates", json={"collection": "docs", "path": str(folder)})
        assert by_path.status_code == 200 and by_path.json()["models"][0]["documents"]["added"] == report_count(folder)

        assert api.post("/v1/ingest-estimates", json={"collection": "docs"}).status_code == 422
        both = {"collection": "docs", "path": str(folder), "records": records}
        assert api.post("/v1/ingest-estimates", json=both).status_code == 422
        outside = api.post("/v1/ingest-estimates", json={"collection": "docs", "path": "/etc"})
        assert outside.status_code == 403 and outside.json()["error"]["code"] == "path_not_allowed"
    assert [r for r in fake_openai.requests if r.path.endswith("/embeddings")] == []
    assert table_counts(settings)["documents"] == 0
