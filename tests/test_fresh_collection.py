"""A first ingest that fails leaves no empty collection behind (issue 19, item 10); a failed later ingest keeps
the collection and its documents. Real SQLite files and the fake OpenAI server (or a port nobody listens on)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from searchsvc.api.app import create_app
from searchsvc.config import Settings
from searchsvc.errors import ProviderError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.celery_tasks import WorkerTasks, make_celery
from searchsvc.storage.schema import IngestSource, SkippedDocument
from searchsvc.store import Store
from tests.conftest import MODEL, remote_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI, Fault
from tests.servers import wait_until

pytestmark = pytest.mark.ingest_lead

REFUSALS = [Fault("status", status=500, only="/embeddings")] * 12  # more than every retry of one run


def _notes(folder: Path, count: int, first: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        (folder / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nNote {n} is about topic{n}.\n")
    return folder


def _collections(settings: Settings) -> dict[str, int]:
    store = Store(settings)
    try:
        return {summary.name: summary.documents for summary in store.summaries()}
    finally:
        store.close()


def _rows(settings: Settings, table: type) -> int:
    store = Store(settings)
    try:
        with store.session() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        store.close()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_first_ingest_the_api_refuses_leaves_no_collection(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=1)
    folder = _notes(tmp_path / "notes", 3)
    (folder / "blank.md").write_text("   \n")  # a skip record is written before the refusal
    fake_openai.faults.extend(REFUSALS)

    with pytest.raises(ProviderError):
        run_ingest(settings, folder)

    assert _collections(settings) == {}
    assert _rows(settings, IngestSource) == 0 and _rows(settings, SkippedDocument) == 0  # nothing of it stays
    fake_openai.faults.clear()
    report = run_ingest(settings, folder)  # the next run starts afresh, with the model configured now
    assert report.added == 3 and _collections(settings) == {"docs": 3}


def test_a_first_ingest_into_an_unreachable_api_leaves_no_collection(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_key="unused", provider="openai", embedding_model=MODEL,
                        base_url=f"http://127.0.0.1:{_unused_port()}/v1", max_retries=0)  # fmt: skip

    with pytest.raises(ProviderError):
        run_ingest(settings, _notes(tmp_path / "notes", 2))

    assert _collections(settings) == {}


def test_a_failed_second_ingest_keeps_the_collection_and_its_documents(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=1)
    folder = _notes(tmp_path / "notes", 3)
    assert run_ingest(settings, folder).added == 3
    _notes(folder, 2, first=3)
    fake_openai.faults.extend(REFUSALS)

    with pytest.raises(ProviderError):
        run_ingest(settings, folder)

    assert _collections(settings) == {"docs": 3}
    assert table_counts(settings)["chunks"] == 3


def test_a_first_ingest_whose_every_document_failed_leaves_no_collection(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.max_input_tokens = 5  # every note is refused on its own: failed documents, the run goes on
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)

    report = run_ingest(settings, _notes(tmp_path / "notes", 2))

    assert len(report.failed) == 2 and report.added == 0
    assert _collections(settings) == {}


def test_an_empty_folder_still_makes_its_collection(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    (tmp_path / "empty").mkdir()

    run_ingest(settings, tmp_path / "empty")  # nothing failed: the collection asked for is kept

    assert _collections(settings) == {"docs": 0}


def test_http_upserts_and_jobs_that_fail_first_leave_no_collection(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=1,
                               ingest_roots=str(tmp_path), job_heartbeat_seconds=0.5)  # fmt: skip
    folder = _notes(tmp_path / "notes", 2)
    with TestClient(create_app(settings)) as api:
        fake_openai.faults.extend(REFUSALS)
        refused = api.post("/v1/collections/records/documents", json={"documents": [{"id": "a", "text": "alpha"}]})
        assert refused.status_code >= 500, refused.text
        fake_openai.faults.clear()
        fake_openai.faults.extend(REFUSALS)
        job_id = api.post("/v1/ingest-jobs", json={"collection": "job", "source": {"path": str(folder)}}).json()["id"]
        job = wait_until(
            lambda: api.get(f"/v1/ingest-jobs/{job_id}").json(), lambda j: j["status"] not in ("queued", "running"),
            60, "the job ended",
        )  # fmt: skip
        assert job["status"] == "failed", job
        listed = api.get("/v1/collections").json()
    assert listed["collections"] == []
    assert _collections(settings) == {}


@pytest.mark.celery
def test_a_distributed_job_that_fails_first_leaves_no_collection(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    pytest.importorskip("celery")
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_retries=1, job_batch_documents=2,
                               broker_url="memory://")  # fmt: skip
    tasks = WorkerTasks(make_celery(settings), settings)  # the worker's own steps; no message is sent
    try:
        with tasks.store.session() as session:
            job_id = jobs.create(session, "dist", {"path": str(_notes(tmp_path / "notes", 3))}, {}).id
        tasks.plan(job_id)
        assert _collections(settings) == {"dist": 0}  # planned: the collection exists, empty
        fake_openai.faults.extend(REFUSALS)
        tasks.batch(None, job_id, 0)
        with tasks.store.session() as session:
            job = jobs.get(session, job_id)
            assert job.status == "failed", job.message
            assert "_created_collection_id" in job.options
        assert _collections(settings) == {}
    finally:
        tasks.close()
