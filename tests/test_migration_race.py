"""Processes that open a new database at the same moment (server workers, a CLI run) all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from searchsvc.storage.database import create_db_engine, current_revision, head_revision, open_database
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


def test_a_new_sqlite_file_held_by_another_process_is_switched_to_wal_once_it_is_free(tmp_path: Path) -> None:
    """SQLite refuses a journal-mode change at once ("database is locked", no busy wait) while another
    connection is writing to it, as when several processes open a new database together: opening waits."""
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # a write in progress: the file is not WAL yet, and is locked for writes
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        release.join()
        engine.dispose()
        holder.close()
