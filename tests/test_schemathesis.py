"""schemathesis against the live service's own OpenAPI schema: no generated request gets a 5xx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

import uvicorn  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from searchsvc.api.app import create_app  # noqa: E402
from tests.conftest import SAMPLE_DATA, remote_settings  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.test_remote_provider import MODEL, run_ingest  # noqa: E402

MAX_EXAMPLES = 60  # per operation: about 700 generated requests in all


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory) -> Iterator[object]:  # type: ignore[no-untyped-def]
    with FakeOpenAI(api_key=None) as fake:
        tmp = tmp_path_factory.mktemp("schemathesis")
        settings_ = remote_settings(
            Path(tmp), fake, embedding_model=MODEL, collection="docs", max_retries=0, api_key="unused"
        )
        run_ingest(settings_, SAMPLE_DATA / "markdown" / "redis")
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings_), host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _fuzz(operation, sent: dict[str, int], failures: list[str]) -> None:  # type: ignore[no-untyped-def]
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(timeout=30)
        sent[label] = sent.get(label, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")

    check()


def test_no_generated_request_gets_a_server_error(live_schema) -> None:  # type: ignore[no-untyped-def]
    """Every operation of /openapi.json, fed hypothesis-generated requests (valid and invalid)."""
    sent: dict[str, int] = {}
    failures: list[str] = []
    for result in live_schema.get_all_operations():
        _fuzz(result.ok(), sent, failures)
    print(f"schemathesis: {sum(sent.values())} generated requests over {len(sent)} operations")
    assert not failures, failures[:5]
    assert len(sent) >= 10
