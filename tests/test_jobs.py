"""Ingestion jobs: created over HTTP and the CLI, run by the server's own runner, watched, cancelled, and
resumed by the next server after a kill, with nothing paid twice but what was in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from searchsvc.doctor import check_collection
from searchsvc.jobs import repository as jobs
from searchsvc.store import Store
from tests.conftest import MODEL, cli_env, make_settings, remote_settings
from tests.fake_openai import FakeOpenAI
from tests.servers import free_port, start_server, wait_until

ENDED = ("succeeded", "failed", "cancelled")


def _folder(root: Path, count: int) -> Path:
    """``count`` Markdown documents of one chunk each, every one with its own words, and one empty file."""
    folder = root / "docs"
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"note-{n:03d}.md").write_text(f"# Note {n}\n\nItem {n} is about topic{n} and word{n * 7}.\n")
    (folder / "empty.md").write_text("")
    return folder


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, ingest_roots=str(tmp_path), job_heartbeat_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_job_ingests_a_folder_and_reports_every_count(api: TestClient, tmp_path: Path) -> None:
    folder = _folder(tmp_path, 12)
    created = api.post("/v1/ingest-jobs", json={"collection": "notes", "source": {"path": str(folder)}})
    assert created.status_code == 202 and created.json()["status"] in ("queued", "running")
    job_id = created.json()["id"]

    job = wait_until(lambda: api.get(f"/v1/ingest-jobs/{job_id}").json(), lambda j: j["status"] in ENDED, 120, "ended")
    assert job["status"] == "succeeded" and job["message"] is None and job["attempts"] == 1
    assert job["documents"] == {"total": 13, "done": 13, "added": 12, "changed": 0, "renamed": 0, "unchanged": 0,
                                "removed": 0, "skipped": 1, "failed": 0}  # fmt: skip
    assert [s["path"] for s in job["skips"]] == [str(folder / "empty.md")]
    assert "no text" in job["skips"][0]["reason"]
    assert job["chunks"] == 12 and job["tokens"] > 0 and job["requests"] >= 1 and job["eta_seconds"] == 0
    assert job["finished_at"] >= job["started_at"] >= job["created_at"] and job["elapsed_seconds"] >= 0
    hits = api.post("/v1/search", json={"query": "topic7", "collection": "notes", "k": 1, "mode": "keyword"}).json()
    assert hits["results"][0]["document_key"].endswith("note-007.md")
    listed = api.get("/v1/ingest-jobs", params={"collection": "notes", "status": "succeeded"}).json()
    assert [j["id"] for j in listed["data"]] == [job_id]

    again = api.post("/v1/ingest-jobs", json={"collection": "notes", "source": {"path": str(folder)}}).json()
    rerun = wait_until(
        lambda: api.get(f"/v1/ingest-jobs/{again['id']}").json(), lambda j: j["status"] in ENDED, 60, "x"
    )
    assert rerun["documents"]["unchanged"] == 13 and rerun["tokens"] == 0  # nothing paid twice


def test_bad_job_requests_get_a_clear_error(api: TestClient, tmp_path: Path) -> None:
    def post(body: dict[str, Any]) -> tuple[int, str, str]:
        response = api.post("/v1/ingest-jobs", json=body)
        error = response.json()["error"]
        return response.status_code, error["code"], error["message"]

    status, code, message = post({"collection": "c", "source": {"path": "/etc"}})
    assert (status, code) == (403, "path_not_allowed") and "SEARCHSVC_INGEST_ROOTS" in message
    status, code, message = post({"collection": "c", "source": {"path": str(tmp_path / "../..")}})
    assert (status, code) == (403, "path_not_allowed")  # no way out through ..
    status, code, message = post({"collection": "c", "source": {"path": str(tmp_path / "missing")}})
    assert (status, code) == (400, "invalid_input") and "does not exist" in message
    status, code, message = post({"collection": "c", "source": {"file_ids": ["file-1"]}})
    assert (status, code) == (404, "not_found") and "no uploaded file file-1" in message
    assert post({"collection": "c", "source": {"path": "x", "file_ids": ["f"]}})[0] == 422
    assert post({"collection": "no spaces", "source": {"path": "x"}})[0] == 422
    assert post({"collection": "c", "source": {"path": "x"}, "unknown": 1})[0] == 422
    missing = api.get("/v1/ingest-jobs/job_0123abcd")
    assert missing.status_code == 404 and "searchsvc jobs" in missing.json()["error"]["message"]
    assert api.get("/v1/ingest-jobs/job_%00").status_code == 422  # never reaches SQL (PostgreSQL refuses NUL)
    assert api.get("/v1/ingest-jobs", params={"collection": "a\x00b"}).status_code == 422
    assert api.get("/v1/ingest-jobs", params={"status": "sleeping"}).status_code == 422


def test_a_queued_job_is_cancelled_at_once_and_a_finished_one_stays(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2)
    settings = make_settings(tmp_path, ingest_roots=str(tmp_path), job_workers=0)  # nobody runs jobs here
    with TestClient(create_app(settings)) as api:
        job = api.post("/v1/ingest-jobs", json={"collection": "c", "source": {"path": str(folder)}}).json()
        cancelled = api.delete(f"/v1/ingest-jobs/{job['id']}").json()
        assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
        assert api.delete(f"/v1/ingest-jobs/{job['id']}").json()["status"] == "cancelled"


def _slow_server(settings: Settings, fake: FakeOpenAI, port: int, **extra: str) -> subprocess.Popen[str]:
    env = cli_env(settings, fake, SEARCHSVC_INGEST_ROOTS=str(settings.data_dir.parent), SEARCHSVC_BATCH_MAX_INPUTS="4",
                  SEARCHSVC_MAX_IN_FLIGHT="1", SEARCHSVC_JOB_HEARTBEAT_SECONDS="0.5", **extra)  # fmt: skip
    return start_server(env, port)


def _read(base: str, job_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/v1/ingest-jobs/{job_id}", timeout=10).json()


def test_a_running_job_is_cancelled_and_keeps_what_it_committed(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    folder = _folder(tmp_path, 40)
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    fake_openai.latency = 0.3
    port = free_port()
    server, base = _slow_server(settings, fake_openai, port), f"http://127.0.0.1:{port}"
    try:
        body = {"collection": "c", "source": {"path": str(folder)}}
        job_id = httpx.post(f"{base}/v1/ingest-jobs", json=body, timeout=10).json()["id"]
        wait_until(lambda: len(fake_openai.embedding_requests()), lambda n: n >= 2, 30, "two embedding requests")
        asked = httpx.delete(f"{base}/v1/ingest-jobs/{job_id}", timeout=10).json()
        assert asked["cancel_requested"] is True
        job = wait_until(lambda: _read(base, job_id), lambda j: j["status"] in ENDED, 10, "cancelled")
        assert job["status"] == "cancelled" and "kept" in job["message"]
        assert len(fake_openai.embedding_requests()) < 10  # 40 texts in fours: it stopped well before the end
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["restarted", "killed"])
def test_a_job_whose_server_stopped_is_resumed_by_the_next_and_pays_once(
    tmp_path: Path, fake_openai: FakeOpenAI, stop: signal.Signals
) -> None:
    """A restart hands the running job back at once; a kill leaves it silent until it is stale. Either way the
    next server resumes it, and it ends as an uninterrupted run would."""
    folder = _folder(tmp_path, 40)
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    fake_openai.latency = 0.3
    port = free_port()
    first, base = _slow_server(settings, fake_openai, port), f"http://127.0.0.1:{port}"
    body = {"collection": "c", "source": {"path": str(folder)}}
    job_id = httpx.post(f"{base}/v1/ingest-jobs", json=body, timeout=10).json()["id"]
    wait_until(lambda: len(fake_openai.embedding_requests()), lambda n: n >= 3, 30, "three embedding requests")
    os.kill(first.pid, stop)
    first.wait(timeout=30)
    if stop == signal.SIGTERM:
        handed_back = Store(settings)
        try:
            with handed_back.session() as session:
                assert jobs.get(session, job_id).status == "queued"  # handed back at once, not left running
        finally:
            handed_back.close()

    port = free_port()
    second, base = (
        _slow_server(settings, fake_openai, port, SEARCHSVC_JOB_STALE_SECONDS="2"),
        f"http://127.0.0.1:{port}",
    )
    try:
        job = wait_until(lambda: _read(base, job_id), lambda j: j["status"] in ENDED, 60, "resumed and ended")
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert job["status"] == "succeeded" and job["attempts"] == (2 if stop == signal.SIGKILL else 1)  # no death
    store = Store(settings)
    try:
        collection = store.get_collection("c")
        assert store.summaries("c")[0].documents == 40
        assert check_collection(store, collection).problems == []
    finally:
        store.close()
    texts = fake_openai.embedded_inputs
    assert len(texts) == 40 and sum(texts.values()) - 40 <= 4  # each text once, bar the one request in flight


def test_the_cli_queues_a_job_and_watches_it_to_the_end(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    settings = make_settings(tmp_path)
    env = cli_env(settings, SEARCHSVC_JOB_HEARTBEAT_SECONDS="0.5")
    command = [sys.executable, "-m", "searchsvc"]
    queued = subprocess.run([*command, "ingest", str(folder), "-c", "cli", "--async"], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    job_id = queued.stdout.strip()
    assert job_id.startswith("job_") and "jobs watch" in queued.stderr
    listed = json.loads(subprocess.run([*command, "jobs", "--json"], env=env, capture_output=True, text=True).stdout)
    assert listed["data"][0]["id"] == job_id and listed["data"][0]["status"] == "queued"

    port = free_port()
    server = start_server(env, port)
    try:
        watched = subprocess.run([*command, "jobs", "watch", job_id, "--json"], env=env, capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["documents"]["added"] == 3
    missing = subprocess.run([*command, "jobs", "watch", "job_nope"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "no ingestion job" in missing.stderr
