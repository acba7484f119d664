"""`searchsvc serve` as a real process for tests: started on a free loopback port, waited for."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, ready_seconds: float = 60) -> subprocess.Popen[str]:
    """A `searchsvc serve` process with ``env``, once /healthz answers (its stderr is kept for failures).

    stderr goes to a file: a pipe nobody reads fills up and blocks the server's logging, and its shutdown."""
    command = [sys.executable, "-m", "searchsvc", "serve", "--port", str(port)]
    with tempfile.TemporaryFile("w+") as log:  # the server keeps its own handle once started
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.2)
        server.kill()
        server.wait()
        log.seek(0)
        raise AssertionError(f"searchsvc serve did not start: {log.read()[-2000:]}")


def wait_until(read: Any, until: Any, within: float, what: str) -> Any:
    """``read()`` until ``until(value)``; fails naming ``what`` and the last value after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"{what} within {within} s; last seen: {value}"
        time.sleep(0.1)


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """A `searchsvc serve` with ``env`` for the length of the block; yields its OpenAI-style base URL (``/v1``)."""
    port = free_port()
    server = start_server(env, port)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=30)
