"""Ingestion jobs over uploaded files (``source.file_ids``): run by a server's own runner and by Celery workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.submit import submit_job
from searchsvc.storage import files
from searchsvc.store import Store
from tests.conftest import SAMPLE_DATA, make_settings
from tests.fake_openai import FakeOpenAI
from tests.servers import wait_until
from tests.test_celery_workers import _broker_or_skip, _job, _settings, _worker

ENDED = ("succeeded", "failed", "cancelled")
RECORDS = [{"id": "r1", "text": "Zebras graze on the savanna.", "metadata": {"kind": "animal"}},
           {"id": "r2", "text": "Quasars shine across the universe.", "metadata": {"kind": "space"}}]  # fmt: skip


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, job_heartbeat_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        yield client


def _upload(api: TestClient, name: str, data: bytes) -> str:
    response = api.post("/v1/files", files={"file": (name, data)}, data={"purpose": "assistants"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _run(api: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    created = api.post("/v1/ingest-jobs", json=body)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    return wait_until(lambda: api.get(f"/v1/ingest-jobs/{job_id}").json(), lambda j: j["status"] in ENDED, 120, "end")


def test_a_job_ingests_uploaded_files_and_a_second_run_pays_nothing(api: TestClient) -> None:
    markdown = _upload(api, "redis.md", (SAMPLE_DATA / "markdown/redis/README.md").read_bytes())
    records = _upload(api, "facts.jsonl", "\n".join(json.dumps(r) for r in RECORDS).encode())
    body = {"collection": "uploads", "source": {"file_ids": [markdown, records, markdown]}}
    job = _run(api, body)
    assert job["status"] == "succeeded", job
    assert job["documents"]["added"] == 3 and job["documents"]["skipped"] == 0 and job["tokens"] > 0
    hit = api.post("/v1/search", json={"query": "zebras", "collection": "uploads", "k": 1, "mode": "keyword"}).json()
    top = hit["results"][0]
    assert top["document_key"] == f"{records}/r1" and top["metadata"]["kind"] == "animal"
    assert top["metadata"]["file_id"] == records and top["metadata"]["filename"] == "facts.jsonl"
    redis = api.post("/v1/search", json={"query": "Redis", "collection": "uploads", "k": 1, "mode": "keyword"}).json()
    assert redis["results"][0]["document_key"] == f"{markdown}/redis.md"
    again = _run(api, body)
    assert again["documents"]["unchanged"] == 3 and again["tokens"] == 0


def test_a_file_deleted_before_its_job_runs_is_reported_as_skipped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, job_workers=0)  # nobody runs jobs until the file is gone
    with TestClient(create_app(settings)) as api:
        kept, gone = _upload(api, "kept.txt", b"kept words"), _upload(api, "gone.txt", b"gone words")
        job_id = api.post("/v1/ingest-jobs", json={"collection": "c", "source": {"file_ids": [kept, gone]}}).json()[
            "id"
        ]
        assert api.delete(f"/v1/files/{gone}").json()["deleted"]
    with TestClient(create_app(make_settings(tmp_path, job_heartbeat_seconds=0.5))) as api:
        job = wait_until(lambda: api.get(f"/v1/ingest-jobs/{job_id}").json(), lambda j: j["status"] in ENDED, 60, "x")
    assert job["status"] == "succeeded" and job["documents"]["added"] == 1
    assert job["skips"] == [{"path": gone, "reason": "no such file: it was deleted after the job was queued"}]


def test_file_jobs_refuse_what_only_paths_take(api: TestClient) -> None:
    file_id = _upload(api, "a.md", b"# A\n\nwords")
    refused = api.post("/v1/ingest-jobs", json={"collection": "c", "source": {"file_ids": [file_id]}, "prune": True})
    assert refused.status_code == 400 and "never pruned" in refused.json()["error"]["message"]
    missing = api.post("/v1/ingest-jobs", json={"collection": "c", "source": {"file_ids": [file_id, "file-nope"]}})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "source.file_ids"
    assert "file-nope" in missing.json()["error"]["message"] and file_id not in missing.json()["error"]["message"]


@pytest.mark.celery
def test_celery_workers_ingest_uploaded_files_in_batches(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    _broker_or_skip()
    settings = _settings(tmp_path, fake_openai)  # batches of five documents
    store = Store(settings, create=True)
    with store.session() as session:
        ids = [files.add(session, f"note-{n}.md", "assistants", "markdown", f"# Note {n}\n\ntopic{n}".encode()).id
               for n in range(12)]  # fmt: skip
    worker = _worker(settings, fake_openai, tmp_path / "worker.log")
    try:
        job_id = submit_job(store, settings, "c", {"file_ids": ids}, {"prune": False})["id"]
        job = wait_until(lambda: _job(store, job_id), lambda j: j["status"] in jobs.TERMINAL, 120, "the job ended")
        assert job["status"] == "succeeded", (job, (tmp_path / "worker.log").read_text()[-3000:])
        assert job["documents"]["added"] == 12 and store.summaries("c")[0].documents == 12
    finally:
        worker.kill()
        worker.wait(timeout=30)
        store.close()
