"""A request the server refuses as too large is split and sent again; a text it refuses on its own fails
its document, with the reason, and the run goes on (issue 18, part 6). The fake API refuses by its own
token limits, as a real server with another tokenizer or smaller limits does."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.errors import ProviderError
from tests.conftest import MODEL, remote_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI, Fault
from tests.servers import wait_until

pytestmark = pytest.mark.ingest_lead

LONG = " ".join(f"poison{n}" for n in range(150))  # one chunk of ~300 tokens: over the server's 200 per input


def _notes(folder: Path, count: int, poison: bool = False) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nNote {n} is about topic{n} and the word{n * 7}.\n")
    if poison:
        (folder / "poison.md").write_text(f"# Poison\n\n{LONG}\n")
    return folder


def test_a_request_over_the_server_s_limit_is_split_until_it_passes(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.max_request_tokens = 60  # a few notes per request; the client plans batches of 300k tokens
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)

    report = run_ingest(settings, _notes(tmp_path / "notes", 24))

    assert (report.added, report.failed) == (24, [])
    assert sorted(fake_openai.embedded_inputs.values()) == [1] * 24  # each text embedded once
    refused = len(fake_openai.embedding_requests()) - report.embedding_requests
    assert refused >= 3 and report.embedding_requests >= 4
    assert table_counts(settings)["chunks"] == 24


def test_a_text_the_server_refuses_alone_fails_its_document_and_the_run_goes_on(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.max_input_tokens = 200
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chunk_tokens=400)
    folder = _notes(tmp_path / "notes", 10, poison=True)

    report = run_ingest(settings, folder)

    assert report.added == 10 and len(report.failed) == 1
    failure = report.failed[0]
    assert failure["path"] == str(folder / "poison.md")
    assert "chunk 1 of 1" in failure["reason"] and "maximum context length is 200 tokens" in failure["reason"]
    assert report.problems()[-1]["reason"].startswith("failed: chunk 1 of 1")
    assert table_counts(settings)["documents"] == 10  # the failed document is not stored

    fake_openai.max_input_tokens = None  # the limit lifted (or the chunk size lowered): the next run takes it
    again = run_ingest(settings, folder)
    assert (again.added, again.unchanged, again.failed) == (1, 10, [])


def test_any_other_refusal_still_stops_the_run_and_stores_nothing_of_it(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    fake_openai.faults.append(Fault("status", status=400, only="/embeddings"))
    with pytest.raises(ProviderError, match="HTTP 400"):
        run_ingest(settings, _notes(tmp_path / "notes", 5))
    assert len(fake_openai.embedding_requests()) == 1  # not split: the refusal is not about size
    assert table_counts(settings)["documents"] == 0


def test_a_job_reports_the_failed_document_with_its_reason(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.max_input_tokens = 200
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chunk_tokens=400,
                               ingest_roots=str(tmp_path), job_heartbeat_seconds=0.5)  # fmt: skip
    folder = _notes(tmp_path / "notes", 3, poison=True)
    with TestClient(create_app(settings)) as api:
        job_id = api.post("/v1/ingest-jobs", json={"collection": "n", "source": {"path": str(folder)}}).json()["id"]
        job = wait_until(
            lambda: api.get(f"/v1/ingest-jobs/{job_id}").json(), lambda j: j["status"] not in ("queued", "running"),
            60, "the job ended",
        )  # fmt: skip
    assert job["status"] == "succeeded", job
    assert job["documents"]["added"] == 3 and job["documents"]["failed"] == 1 and job["documents"]["done"] == 4
    assert [s["path"] for s in job["skips"]] == [str(folder / "poison.md")]
    assert job["skips"][0]["reason"].startswith("failed: chunk 1 of 1")


def test_after_one_refusal_larger_requests_are_split_before_they_are_sent(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.max_request_tokens = 60
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, batch_max_inputs=8, max_in_flight=1)

    report = run_ingest(settings, _notes(tmp_path / "notes", 48))

    assert report.added == 48 and sorted(fake_openai.embedded_inputs.values()) == [1] * 48
    refused = len(fake_openai.embedding_requests()) - report.embedding_requests
    # 136 tokens refused, then 68: every later request is split below that first (without it: 3 per batch, 18)
    assert refused == 2, refused
