"""Shared fixtures; and a guard that fails any test trying to reach past loopback."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from ingest.runs import IngestReport, ingest_path
from searchsvc.config import Settings
from searchsvc.providers import make_embedding_provider
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.storage.schema import Chunk, Document, Embedding
from searchsvc.store import Store
from tests.fake_embedder import FakeEmbedder
from tests.fake_openai import FakeOpenAI
from tests.postgres import PGVECTOR, PostgresServer
from tests.postgres import SERVER as POSTGRES

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
SHARED = REPO.parent / "shared"

_real_connect = socket.socket.connect


def _loopback_only_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("127."):
            raise RuntimeError(f"tests may not reach the network: connection to {address!r} refused")
    return _real_connect(self, address)


socket.socket.connect = _loopback_only_connect  # type: ignore[method-assign]


# SEARCHSVC_TEST_DATABASE=postgresql runs the whole suite against PostgreSQL (each test its own database);
# =pgvector against PostgreSQL with pgvector, with SEARCHSVC_VECTOR_BACKEND=pgvector.
TEST_DATABASE = os.environ.get("SEARCHSVC_TEST_DATABASE", "sqlite")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Tests of FAISS index files (folders, manifests, generations) have nothing to check with pgvector.
faiss_only = pytest.mark.skipif(
    TEST_DATABASE == "pgvector", reason="checks FAISS index files, which the pgvector backend does not use"
)


def postgres_url_or_skip(key: str) -> str:
    """A fresh PostgreSQL database URL; skips (or, in CI, fails) when no server can be had."""
    return _database_or_skip(POSTGRES, "PostgreSQL", key)


def pgvector_url_or_skip(key: str) -> str:
    """A fresh database on a PostgreSQL server with pgvector; skips (or, in CI, fails) when none can be had."""
    return _database_or_skip(PGVECTOR, "PostgreSQL with pgvector", key)


def _database_or_skip(server: PostgresServer, what: str, key: str) -> str:
    if server.admin_url() is None:
        if IN_CI:
            pytest.fail(f"{what} is required in CI: {server.reason}")
        pytest.skip(server.reason)
    return server.database_url(key)


def unit_vectors(count: int, dimension: int, seed: int) -> np.ndarray:
    """``count`` random unit vectors, the same for the same seed."""
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated in tmp_path; no key unless given, so the local model is the default."""
    base: dict[str, Any] = {"data_dir": tmp_path / "data", "api_key": None, "provider": "auto"}
    if TEST_DATABASE == "postgresql":
        base["database_url"] = postgres_url_or_skip(str(tmp_path))
    elif TEST_DATABASE == "pgvector":
        base["database_url"] = pgvector_url_or_skip(str(tmp_path))
        base["vector_backend"] = "pgvector"
    return Settings(**{**base, **overrides})


def cli_env(settings: Settings, server: FakeOpenAI | None = None, **extra: str) -> dict[str, str]:
    """Environment for a `searchsvc` subprocess that sees the same data (and fake API) as ``settings``."""
    env = {**os.environ, "SEARCHSVC_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["SEARCHSVC_DATABASE_URL"] = settings.database_url
    env["SEARCHSVC_VECTOR_BACKEND"] = settings.vector_backend
    if server is not None:
        env.update(
            {
                "AIMLAPI_API_KEY": server.api_key or "unused",
                "SEARCHSVC_BASE_URL": server.url,
                "SEARCHSVC_EMBEDDING_MODEL": settings.embedding_model,
            }
        )
    return {**env, **extra}


REQUIRED_IN_CI = {
    "vector_contract",
    "pgvector",
    "celery",
    "openai_compat",
    "tools",
    "mcp",
    "browser",
    "ingest_lead",
    "real_server",
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a test of a named feature must run: its skip becomes a failure."""
    outcome = yield
    report = outcome.get_result()
    required = REQUIRED_IN_CI & {mark.name for mark in item.iter_markers()}
    if IN_CI and report.skipped and required:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} ({', '.join(sorted(required))}) was skipped in CI: {report.longrepr}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    POSTGRES.drop_all()
    PGVECTOR.drop_all()


def remote_settings(tmp_path: Path, server: FakeOpenAI, **overrides: Any) -> Settings:
    """Settings pointing at the fake OpenAI server, with fast retries."""
    defaults: dict[str, Any] = {
        "api_key": server.api_key or "unused",
        "base_url": server.url,
        "provider": "openai",
        "max_retries": 3,
        "request_timeout": 5.0,
    }
    return make_settings(tmp_path, **{**defaults, **overrides})


@pytest.fixture(scope="session")
def local_provider():  # type: ignore[no-untyped-def]
    from searchsvc.providers.local import LocalEmbeddingProvider

    return LocalEmbeddingProvider()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's leaks into a test: every variable Settings reads is cleared (the
    harness's own SEARCHSVC_TEST_* variables stay)."""
    for name in list(os.environ):
        if name == "AIMLAPI_API_KEY" or (name.startswith("SEARCHSVC_") and not name.startswith("SEARCHSVC_TEST_")):
            monkeypatch.delenv(name)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


MODEL = "fake-embed"  # a model the fake HTTP server serves, of unknown dimension: the first response fixes it


def run_ingest(
    settings: Settings,
    folder: Path,
    collection: str = "docs",
    prune: bool = False,
    embedder: EmbeddingProvider | None = None,
) -> IngestReport:
    """One ingestion run, as the CLI does it, with the settings' provider (or ``embedder``)."""
    provider = embedder or make_embedding_provider(settings)
    store = Store(settings)
    try:
        return ingest_path(
            store,
            provider,
            folder,
            collection,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            prune=prune,
        )
    finally:
        store.close()
        if embedder is None:
            provider.close()


def table_counts(settings: Settings) -> dict[str, int]:
    store = Store(settings)
    try:
        with store.session() as session:
            return {
                table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (Document, Chunk, Embedding)
            }
    finally:
        store.close()


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE_DATA / "markdown" / "pyenv", folder)
    return folder
