"""Shared fixtures; and a guard that fails any test trying to reach past loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from searchsvc.config import Settings
from tests.fake_openai import FakeOpenAI
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


# SEARCHSVC_TEST_DATABASE=postgresql runs the whole suite against PostgreSQL (each test its own database).
TEST_DATABASE = os.environ.get("SEARCHSVC_TEST_DATABASE", "sqlite")
IN_CI = os.environ.get("CI", "").lower() == "true"


def postgres_url_or_skip(key: str) -> str:
    """A fresh PostgreSQL database URL; skips (or, in CI, fails) when no server can be had."""
    if POSTGRES.admin_url() is None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {POSTGRES.reason}")
        pytest.skip(POSTGRES.reason)
    return POSTGRES.database_url(key)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated in tmp_path; no key unless given, so the local model is the default."""
    base: dict[str, Any] = {"data_dir": tmp_path / "data", "api_key": None, "provider": "auto"}
    if TEST_DATABASE == "postgresql":
        base["database_url"] = postgres_url_or_skip(str(tmp_path))
    return Settings(**{**base, **overrides})


def cli_env(settings: Settings, server: FakeOpenAI | None = None, **extra: str) -> dict[str, str]:
    """Environment for a `searchsvc` subprocess that sees the same data (and fake API) as ``settings``."""
    env = {**os.environ, "SEARCHSVC_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["SEARCHSVC_DATABASE_URL"] = settings.database_url
    if server is not None:
        env.update(
            {
                "AIMLAPI_API_KEY": server.api_key or "unused",
                "SEARCHSVC_BASE_URL": server.url,
                "SEARCHSVC_EMBEDDING_MODEL": settings.embedding_model,
            }
        )
    return {**env, **extra}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    POSTGRES.drop_all()


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
    """No developer key or data dir leaks into a test."""
    for name in (
        "AIMLAPI_API_KEY",
        "SEARCHSVC_API_KEY",
        "SEARCHSVC_DATA_DIR",
        "SEARCHSVC_DATABASE_URL",
        "SEARCHSVC_PROVIDER",
        "SEARCHSVC_BASE_URL",
        "SEARCHSVC_INDEX_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
