"""schemathesis against the live service's own OpenAPI schema: no generated request gets a 5xx, and every
response has a documented status, content type and shape (the response models of every route)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

import uvicorn  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from searchsvc.api.app import create_app  # noqa: E402
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.servers import free_port  # noqa: E402

MAX_EXAMPLES = 100  # per operation with inputs: about 1,300 generated requests over the 20 operations
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory) -> Iterator[object]:  # type: ignore[no-untyped-def]
    with FakeOpenAI(api_key=None) as fake:
        tmp = tmp_path_factory.mktemp("schemathesis")
        (tmp / "jobs").mkdir()
        settings_ = remote_settings(
            Path(tmp), fake, embedding_model=MODEL, collection="docs", max_retries=0, api_key="unused",
            ingest_roots=str(tmp / "jobs"), job_workers=0,  # generated jobs: nothing to read, none run
        )  # fmt: skip
        run_ingest(settings_, SAMPLE_DATA / "markdown" / "redis")
        port = free_port()
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
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # every failed check is collected, the run goes on
            failures.append(f"{label}: {response.status_code} {str(exc)[:400]} body={response.text[:200]}")

    check()


def test_generated_requests_get_no_server_error_and_documented_responses(live_schema) -> None:  # type: ignore[no-untyped-def]
    """Every operation of /openapi.json, fed hypothesis-generated requests (valid and invalid)."""
    sent: dict[str, int] = {}
    failures: list[str] = []
    for result in live_schema.get_all_operations():
        _fuzz(result.ok(), sent, failures)
    print(f"schemathesis: {sum(sent.values())} generated requests over {len(sent)} operations")
    assert not failures, failures[:5]
    assert len(sent) >= 20 and sum(sent.values()) >= 1000
