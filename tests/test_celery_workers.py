"""Distributed ingestion on Celery, against the real RabbitMQ of this machine: two `searchsvc worker`
processes share a job's batches; one is SIGKILLed mid-job and the job still ends exactly as an
uninterrupted run would, paying again only for the request in flight at the kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from searchsvc.config import Settings
from searchsvc.doctor import check_collection
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.submit import submit_job
from searchsvc.jobs.view import job_json
from searchsvc.storage.schema import IngestJobBatch
from searchsvc.store import Store
from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_openai import FakeOpenAI
from tests.servers import wait_until

pytestmark = pytest.mark.celery

BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def _broker_or_skip() -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (.ci/run starts it)")


def _settings(tmp_path: Path, fake: FakeOpenAI, broker: str = BROKER) -> Settings:
    queue = f"searchsvc.test.{uuid.uuid4().hex[:8]}"  # this test's own queue: nothing left by another run
    return remote_settings(tmp_path, fake, embedding_model=MODEL, broker_url=broker, job_queue=queue,
                           job_batch_documents=5, job_stale_seconds=3.0, job_heartbeat_seconds=0.5)  # fmt: skip


def _worker(settings: Settings, fake: FakeOpenAI, log: Path) -> subprocess.Popen[bytes]:
    broker = settings.broker_url.get_secret_value() if settings.broker_url else BROKER
    env = cli_env(settings, fake, SEARCHSVC_BROKER_URL=broker, SEARCHSVC_JOB_QUEUE=settings.job_queue,
                  SEARCHSVC_JOB_BATCH_DOCUMENTS="5", SEARCHSVC_JOB_STALE_SECONDS="3",
                  SEARCHSVC_JOB_HEARTBEAT_SECONDS="0.5", SEARCHSVC_BATCH_MAX_INPUTS="1",  # a request per text
                  SEARCHSVC_MAX_IN_FLIGHT="1")  # fmt: skip
    command = [sys.executable, "-m", "searchsvc", "worker", "--concurrency", "1"]
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _notes(folder: Path, count: int, first: int = 0) -> Path:
    folder.mkdir()
    for n in range(first, first + count):
        (folder / f"note-{n:03d}.md").write_text(f"# Note {n}\n\nItem {n} is about topic{n} and word{n * 7}.\n")
    return folder


def _slow_job_setup(tmp_path: Path, fake: FakeOpenAI, count: int, broker: str = BROKER) -> tuple[Path, Settings, Store]:
    """``count`` one-chunk notes, settings for this test's queue, a fake API answering in 0.25 s."""
    folder = _notes(tmp_path / "docs", count)
    fake.latency = 0.25
    settings = _settings(tmp_path, fake, broker)
    return folder, settings, Store(settings)


def _job(store: Store, job_id: str) -> dict[str, Any]:
    with store.session() as session:
        return job_json(jobs.get(session, job_id))


def test_a_killed_worker_s_batch_goes_to_another_and_the_job_ends_as_if_uninterrupted(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    _broker_or_skip()
    folder, settings, store = _slow_job_setup(tmp_path, fake_openai, 60)
    workers = [_worker(settings, fake_openai, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        job_id = submit_job(store, settings, "c", {"path": str(folder)}, {"prune": False})["id"]
        wait_until(lambda: len(fake_openai.embedding_requests()), lambda n: n >= 4, 60, "four embedding requests")
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=30)
        job = wait_until(lambda: _job(store, job_id), lambda j: j["status"] in jobs.TERMINAL, 120, "the job ended")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("worker-*.log"))
    assert job["status"] == "succeeded", (job, logs)
    assert job["documents"]["total"] == 60 and job["documents"]["added"] == 60 and job["chunks"] == 60
    try:
        with store.session() as session:
            retaken = list(session.scalars(select(IngestJobBatch).where(IngestJobBatch.job_id == job_id)))
        assert store.summaries("c")[0].documents == 60
        assert check_collection(store, store.get_collection("c")).problems == []
    finally:
        store.close()
    sent = fake_openai.embedded_inputs
    assert len(sent) == 60 and sum(sent.values()) - 60 <= 1, sent  # once each, bar the one request in flight
    assert max(batch.attempts for batch in retaken) == 2  # the killed worker's batch, taken again by the other


def test_a_job_whose_source_is_missing_on_the_worker_fails_with_the_reason(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    _broker_or_skip()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome words.\n")
    settings = _settings(tmp_path, fake_openai)
    store = Store(settings)
    worker = _worker(settings, fake_openai, tmp_path / "worker.log")
    try:
        job_id = submit_job(store, settings, "c", {"path": str(tmp_path / "gone")}, {"prune": False})["id"]
        job = wait_until(lambda: _job(store, job_id), lambda j: j["status"] in jobs.TERMINAL, 60, "the job ended")
    finally:
        worker.kill()
        worker.wait(timeout=30)
        store.close()
    assert job["status"] == "failed" and "does not exist on the worker" in job["message"]


def test_a_cancelled_distributed_job_stops_within_its_running_batch(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    _broker_or_skip()
    folder, settings, store = _slow_job_setup(tmp_path, fake_openai, 40)
    worker = _worker(settings, fake_openai, tmp_path / "worker.log")
    try:
        fake_openai.latency = 1.0  # a batch of five takes five seconds
        job_id = submit_job(store, settings, "c", {"path": str(folder)}, {"prune": False})["id"]
        # the job's counts move while its first batch runs, not only when a batch ends
        moving = wait_until(lambda: _job(store, job_id), lambda j: j["requests"] >= 2, 60, "progress within a batch")
        assert moving["documents"]["done"] == 0 and moving["tokens"] > 0 and moving["status"] == "running", moving
        with store.session() as session:
            assert jobs.request_cancel(session, job_id).cancel_requested
        job = wait_until(lambda: _job(store, job_id), lambda j: j["status"] in jobs.TERMINAL, 30, "the job ended")
    finally:
        worker.kill()
        worker.wait(timeout=30)
        store.close()
    assert job["status"] == "cancelled" and "kept" in job["message"]
    assert len(fake_openai.embedding_requests()) < 10  # 40 texts, one per request: it stopped in its first batches


def _attempts(store: Store, job_id: str) -> int:
    with store.session() as session:
        return max((b.attempts for b in session.scalars(select(IngestJobBatch).where(IngestJobBatch.job_id == job_id))),
                   default=0)  # fmt: skip


def test_a_batch_whose_workers_keep_dying_fails_its_job_with_the_reason(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """A batch that kills every worker taking it (here: SIGKILL each time) must not go round forever: the
    fourth taker fails the job, naming the deaths and the batch's files."""
    _broker_or_skip()
    folder, settings, store = _slow_job_setup(tmp_path, fake_openai, 5)  # one batch of five one-request notes
    fake_openai.latency = 2.0
    job_id = submit_job(store, settings, "c", {"path": str(folder)}, {"prune": False})["id"]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for death in range(1, 4):
            workers.append(_worker(settings, fake_openai, tmp_path / f"worker-{death}.log"))
            wait_until(lambda: _attempts(store, job_id), lambda n, d=death: n >= d, 60, f"attempt {death} began")
            os.kill(workers[-1].pid, signal.SIGKILL)
            workers[-1].wait(timeout=30)
        workers.append(_worker(settings, fake_openai, tmp_path / "worker-4.log"))
        job = wait_until(lambda: _job(store, job_id), lambda j: j["status"] in jobs.TERMINAL, 60, "the job ended")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
        store.close()
    assert job["status"] == "failed", job
    assert "3 workers stopped while running it" in job["message"] and "note-000.md" in job["message"], job
