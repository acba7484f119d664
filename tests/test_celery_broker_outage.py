"""A broker that goes away mid-job, with a real Redis of this test's own (started, SIGKILLed, started again
on the same port; no persistence, so every message it held is lost): new jobs are refused with a clear
503 while it is down, and the running job, and one whose plan message was lost, finish once it is back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from searchsvc.errors import ServiceBusyError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.submit import submit_job
from tests.fake_openai import FakeOpenAI
from tests.servers import free_port, wait_until
from tests.test_celery_workers import _job, _notes, _slow_job_setup, _worker

pytestmark = pytest.mark.celery


class PrivateRedis:
    """``redis-server`` on a free loopback port, in memory only; ``kill`` and ``start`` keep the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, bool, 10, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs and starts it)")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_a_broker_that_goes_away_refuses_new_jobs_clearly_and_the_jobs_finish_when_it_returns(
    tmp_path: Path, fake_openai: FakeOpenAI, redis: PrivateRedis
) -> None:
    folder, settings, store = _slow_job_setup(tmp_path, fake_openai, 30, broker=redis.url)
    later = _notes(tmp_path / "later", 5, first=100)
    worker = _worker(settings, fake_openai, tmp_path / "worker.log")
    try:
        running = submit_job(store, settings, "c", {"path": str(folder)}, {"prune": False})["id"]
        wait_until(lambda: len(fake_openai.embedding_requests()), lambda n: n >= 3, 60, "three embedding requests")
        waiting = submit_job(store, settings, "d", {"path": str(later)}, {"prune": False})["id"]  # behind it
        redis.kill()  # the waiting job's plan message dies with it
        started = time.monotonic()
        with pytest.raises(ServiceBusyError, match="broker is unreachable") as refused:
            submit_job(store, settings, "e", {"path": str(later)}, {"prune": False})
        assert time.monotonic() - started < 10 and "start it and send the job again" in str(refused.value)
        time.sleep(2)
        redis.start()
        ended = [
            wait_until(lambda j=job_id: _job(store, j), lambda j: j["status"] in jobs.TERMINAL, 90, f"{job_id} ended")
            for job_id in (running, waiting)
        ]
        with store.session() as session:
            assert [job.collection for job in jobs.listed(session, None, None, 10)] == ["d", "c"]  # "e" not kept
    finally:
        worker.kill()
        worker.wait(timeout=30)
        store.close()
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert [job["status"] for job in ended] == ["succeeded", "succeeded"], (ended, log)
    assert ended[0]["documents"]["added"] == 30 and ended[1]["documents"]["added"] == 5
    sent = fake_openai.embedded_inputs
    assert len(sent) == 35 and sum(sent.values()) - 35 <= 1, sent  # each text paid for once, bar one in flight
