"""Processes that open a new database at the same moment (server workers, a CLI run) all succeed."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from searchsvc.storage.database import current_revision, head_revision, open_database
from tests.conftest import make_settings


def _open(url: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    barrier.wait()
    try:
        engine, _ = open_database(url)
        engine.dispose()
        results.put("ok")
    except Exception as exc:  # the failure itself is what the test reports
        results.put(f"{type(exc).__name__}: {exc}"[:300])


def test_six_processes_migrating_one_new_database_all_succeed(tmp_path: Path) -> None:
    url = make_settings(tmp_path).resolved_database_url
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_open, args=(url, barrier, results)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in processes]
    assert outcomes == ["ok"] * 6
    engine, _ = open_database(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
