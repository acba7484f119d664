"""Every failure inside the error tree: what the caller gets is a documented error with a next step."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc import errors
from searchsvc.api.app import create_app
from searchsvc.errors import ProviderError, ProviderUnavailableError, SearchsvcError
from searchsvc.providers.http_client import OpenAICompatibleClient
from tests.conftest import MODEL, remote_settings
from tests.fake_openai import FakeOpenAI, Fault


def test_the_tree_drawn_in_the_docstring_is_the_tree_in_the_code() -> None:
    drawn = re.findall(r"^\s+[│├└─ ]*(\w+Error)\s+(\d{3}) (\w+)", errors.__doc__ or "", re.MULTILINE)
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, SearchsvcError) and cls.__module__ == errors.__name__
    }
    assert {name for name, _, _ in drawn} == set(classes)
    for name, status, code in drawn:
        assert (classes[name].http_status, classes[name].code) == (int(status), code), name


def test_a_failed_get_names_get_its_url_status_and_attempts(fake_openai: FakeOpenAI) -> None:
    client = OpenAICompatibleClient(fake_openai.url, "test-key", max_retries=2, deadline=10)
    try:
        with pytest.raises(ProviderError) as refused:
            client.get_json("/no-such-thing")
        assert (refused.value.method, refused.value.status, refused.value.attempts) == ("GET", 404, 1)
        assert refused.value.url == f"{fake_openai.url}/no-such-thing"
        assert str(refused.value).startswith(f"GET {fake_openai.url}/no-such-thing returned HTTP 404")

        fake_openai.queue(*[Fault("status", 500, headers={"Retry-After": "0"})] * 3)
        with pytest.raises(ProviderUnavailableError) as failing:
            client.get_json("/models")
        assert (failing.value.method, failing.value.status, failing.value.attempts) == ("GET", 500, 3)
        assert "GET " in str(failing.value) and "POST" not in str(failing.value)
    finally:
        client.close()


def test_a_full_write_queue_is_a_503_with_retry_after(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, max_queued_documents=3)
    fake_openai.latency = 3.0  # the writer is busy with the first request for a while
    documents = [{"id": f"d{i}", "text": f"document number {i} about queues"} for i in range(3)]
    with TestClient(create_app(settings)) as client:
        answers: dict[str, int] = {}

        def upsert(name: str, docs: list[dict]) -> None:
            answers[name] = client.post("/v1/collections/q/documents", json={"documents": docs}).status_code

        first = threading.Thread(target=upsert, args=("first", documents))
        first.start()
        deadline = time.monotonic() + 20
        while not fake_openai.embedding_requests() and time.monotonic() < deadline:
            time.sleep(0.02)  # the writer has taken the first request and is embedding it
        second = threading.Thread(target=upsert, args=("second", [{"id": "e", "text": "waits in the queue"}] * 1))
        second.start()
        time.sleep(0.3)
        third = [{"id": f"f{i}", "text": f"turned away {i}"} for i in range(3)]
        refused = client.post("/v1/collections/q/documents", json={"documents": third})
        first.join(30)
        second.join(30)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "service_busy"
    assert "send the upsert again" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert answers == {"first": 200, "second": 200}  # what was queued was written
