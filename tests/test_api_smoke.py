"""The HTTP app starts from settings and answers health and search (full API: issue 3)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI


def test_health_docs_and_search(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    run_ingest(settings, SAMPLE_DATA / "markdown")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/docs").status_code == 200
        body = client.post("/v1/search", json={"query": "redis persistence", "k": 3}).json()
        assert len(body["results"]) == 3 and body["results"][0]["document_key"] == "markdown/redis/README.md"
        assert client.post("/v1/search", json={"query": "", "k": 3}).status_code == 422
        missing = client.post("/v1/search", json={"query": "x", "collection": "nope"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
