"""`searchsvc serve` as users run it: a real process on a port, JSON logs from every worker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_env, make_settings
from tests.servers import free_port


def _started_pids(log: Path) -> set[int]:
    pids = set()
    for line in log.read_text().splitlines():
        if '"service started"' in line:
            pids.add(json.loads(line)["pid"])
    return pids


@pytest.mark.parametrize("workers", [1, 2])
def test_every_log_line_is_json_with_a_start_line_and_request_lines(tmp_path: Path, workers: int) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "searchsvc", "serve", "--port", str(port), "--workers", str(workers)],
            env=cli_env(make_settings(tmp_path)),
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            text=True,
        )
    try:
        # Every worker logs its start line; wait for all of them (the first one alone answers /healthz).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_started_pids(log)) < workers:
            time.sleep(0.2)
        assert len(_started_pids(log)) == workers
        for _ in range(6):
            assert httpx.get(f"http://127.0.0.1:{port}/v1/collections", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/no-such-route", timeout=10).status_code == 404
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON: this fails on the first that is not
    started = [r for r in records if r["message"] == "service started"]
    assert len({r["pid"] for r in started}) == workers
    requests = [r for r in records if r["message"] == "request"]
    assert sum(r["route"] == "/v1/collections" and r["status"] == 200 for r in requests) == 6
    assert any(r["status"] == 404 for r in requests)
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own lines are JSON too
