"""A PostgreSQL server for the tests: the one named by SEARCHSVC_TEST_POSTGRES_URL, else the local
one on 127.0.0.1:5432, else one started with initdb/pg_ctl in a temporary folder.

Each test gets its own database, created on demand and dropped at the end of the session.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresServer:
    def __init__(self) -> None:
        self._admin_url: str | None = None
        self._reason = ""
        self._created: list[str] = []
        self._owned_dir: Path | None = None
        self._probed = False

    @property
    def reason(self) -> str:
        return self._reason

    def admin_url(self) -> str | None:
        """An admin URL (database ``postgres``), or None with ``reason`` saying why."""
        if not self._probed:
            self._probed = True
            self._admin_url = self._find()
        return self._admin_url

    def database_url(self, key: str) -> str:
        """A fresh database for ``key`` (a test's tmp path); created once."""
        admin = self.admin_url()
        assert admin is not None, self._reason
        name = "svc_" + hashlib.sha1(key.encode()).hexdigest()[:16]
        if name not in self._created:
            self._execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
            self._created.append(name)
        return admin.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        admin = self._admin_url
        if admin is not None and self._created:
            self._execute(admin, *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in self._created))
        self._created.clear()
        if self._owned_dir is not None:
            _as_postgres(["pg_ctl", "-D", str(self._owned_dir / "data"), "-m", "immediate", "stop"])
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def _find(self) -> str | None:
        candidates = [os.environ.get("SEARCHSVC_TEST_POSTGRES_URL"), LOCAL_URL]
        for url in filter(None, candidates):
            if _reachable(url):
                return _admin_of(url)
        try:
            return self._start_own()
        except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
            self._reason = f"no PostgreSQL server: none at {LOCAL_URL} and initdb failed ({exc})"
            return None

    def _start_own(self) -> str:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("initdb not installed")
        folder = Path(tempfile.mkdtemp(prefix="searchsvc-pg-"))
        os.chmod(folder, 0o777)
        port = _free_port()
        bin_dir = Path(binaries[-1]).parent
        _as_postgres([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"])
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-w",
                "-l",
                str(folder / "log"),
                "-o",
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )
        self._owned_dir = folder
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        for _ in range(50):
            if _reachable(url):
                return url
            time.sleep(0.1)
        raise RuntimeError("the started server did not answer")

    @staticmethod
    def _execute(url: str, *statements: str) -> None:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def _admin_of(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def _reachable(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(command: list[str]) -> None:
    """initdb refuses to run as root: run server commands as the postgres user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True)


SERVER = PostgresServer()
