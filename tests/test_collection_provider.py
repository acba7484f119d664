"""A collection is always searched and extended with the provider and model that built it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from tests.conftest import MODEL, cli_env, make_settings, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

UNREACHABLE = "http://127.0.0.1:9/v1"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "quokka.md").write_text("# Quokkas\n\nQuokkas are small marsupials living on Rottnest Island.\n")
    (folder / "wombat.md").write_text("# Wombats\n\nWombats dig burrows and leave cube shaped droppings.\n")
    return folder


def _cli(settings, *args: str, **env: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "searchsvc", *args], env=cli_env(settings, **env), capture_output=True, text=True
    )


@pytest.mark.parametrize("api", ["fake", "unreachable"])
def test_an_offline_collection_is_searched_locally_when_a_key_is_set(tmp_path, notes, fake_openai, api) -> None:
    offline = make_settings(tmp_path)
    assert _cli(offline, "ingest", str(notes)).returncode == 0
    base_url = fake_openai.url if api == "fake" else UNREACHABLE
    key = {"AIMLAPI_API_KEY": fake_openai.api_key or "", "SEARCHSVC_BASE_URL": base_url}
    cli = _cli(offline, "search", "Where do quokkas live?", "--json", **key)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["results"][0]["document_key"] == "notes/quokka.md"
    online = make_settings(tmp_path, api_key=fake_openai.api_key, base_url=base_url)
    with TestClient(create_app(online)) as client:
        response = client.post("/v1/search", json={"query": "Where do quokkas live?", "k": 1})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["document_key"] == "notes/quokka.md"
        upsert = {"documents": [{"id": "n", "text": "Numbats eat termites."}]}
        assert client.post("/v1/collections/default/documents", json=upsert).json()["model"] == "all-MiniLM-L6-v2"
    assert fake_openai.requests == []


def test_a_new_collection_with_an_unknown_model_is_a_400(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        response = client.post("/v1/collections", json={"name": "x", "embedding_model": "no-such-model"})
        assert response.status_code == 400 and "unknown embedding model" in response.json()["error"]["message"]
        local = client.post("/v1/collections", json={"name": "y", "embedding_model": "all-MiniLM-L6-v2"})
        assert local.status_code == 201 and local.json()["dimension"] == 384


def test_a_model_the_api_does_not_offer_is_a_400(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.known_models = {MODEL}
    with TestClient(create_app(remote_settings(tmp_path, fake_openai))) as client:
        refused = client.post("/v1/collections", json={"name": "x", "embedding_model": "no-such-model"})
        assert refused.status_code == 400 and "does not accept model 'no-such-model'" in refused.text
        created = client.post("/v1/collections", json={"name": "y", "embedding_model": MODEL})
        assert created.status_code == 201 and created.json()["dimension"] == fake_openai.dimension


def test_an_api_collection_without_a_configured_api_says_what_to_set(tmp_path, notes, fake_openai) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, notes, collection="default")
    keyless = make_settings(tmp_path, embedding_model=MODEL)
    with TestClient(create_app(keyless)) as client:
        response = client.post("/v1/search", json={"query": "quokkas"})
    assert response.status_code == 503 and "AIMLAPI_API_KEY" in response.json()["error"]["message"]
    cli = _cli(keyless, "search", "quokkas")
    assert cli.returncode != 0 and cli.stderr.startswith("error: collection 'default' was embedded with API model")
