"""An index folder belongs to one database and one collection; collection names never reach lock files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from searchsvc.errors import StorageError
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.store import Store
from tests.conftest import MODEL, cli_env, faiss_only, make_settings, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

TOPICS = {
    "quokka": "Quokkas are small marsupials living on Rottnest Island near Perth.",
    "volcano": "Volcanoes erupt molten magma, ash and gases from deep below the crust.",
}


def _folder(root: Path, name: str, topics: list[str]) -> Path:
    """One document per topic, in this order: chunk ids follow it (1, 2, ... in a fresh database)."""
    folder = root / name
    folder.mkdir(parents=True)
    for position, topic in enumerate(topics):
        (folder / f"{position}-{topic}.md").write_text(f"# {topic}\n\n{TOPICS[topic]}\n")
    return folder


def _keys(settings, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        return [hit.document_key for hit in search(store, provider, "docs", query, k=2, mode="vector").hits]
    finally:
        store.close()
        provider.close()


@pytest.fixture
def two_databases(tmp_path: Path, fake_openai: FakeOpenAI):  # type: ignore[no-untyped-def]
    """The suite's database and a second SQLite database, both told to keep indexes in one folder."""
    shared = tmp_path / "shared-indexes"
    first = remote_settings(tmp_path / "a", fake_openai, embedding_model=MODEL, index_dir=shared)
    second = remote_settings(
        tmp_path / "b",
        fake_openai,
        embedding_model=MODEL,
        index_dir=shared,
        database_url=f"sqlite:///{tmp_path / 'b' / 'other.db'}",
    )
    # The same chunk ids in both databases, for the opposite topics.
    run_ingest(first, _folder(tmp_path, "first", ["quokka", "volcano"]))
    run_ingest(second, _folder(tmp_path, "second", ["volcano", "quokka"]))
    return first, second


@faiss_only
def test_two_databases_sharing_an_index_folder_each_find_their_own_documents(two_databases) -> None:
    first, second = two_databases
    for settings, prefix in ((first, "first/"), (second, "second/")):
        assert _keys(settings, "marsupials on Rottnest Island")[0].endswith("-quokka.md")
        assert _keys(settings, "volcanoes erupt molten magma")[0].endswith("-volcano.md")
        assert all(key.startswith(prefix) for key in _keys(settings, "volcanoes"))
    for settings in (first, second):
        doctor = subprocess.run(
            [sys.executable, "-m", "searchsvc", "doctor", "--json"],
            env={**cli_env(settings), "SEARCHSVC_INDEX_DIR": str(settings.index_dir)},
            capture_output=True,
            text=True,
        )
        assert json.loads(doctor.stdout)["ok"], doctor.stdout


@faiss_only
def test_an_index_copied_from_another_database_is_refused_and_reindex_heals_it(two_databases) -> None:
    first, second = two_databases
    stores = Store(first), Store(second)
    try:
        theirs, ours = (s.index_folder("docs") for s in stores)
        shutil.rmtree(ours)
        shutil.copytree(theirs, ours)
    finally:
        for store in stores:
            store.close()
    with pytest.raises(StorageError, match=r"built from another database.*searchsvc reindex"):
        _keys(second, "volcanoes erupt molten magma")
    env = {**cli_env(second), "SEARCHSVC_INDEX_DIR": str(second.index_dir)}
    doctor = subprocess.run(
        [sys.executable, "-m", "searchsvc", "doctor", "--json"], env=env, capture_output=True, text=True
    )
    problems = json.loads(doctor.stdout)["collections"][0]["problems"]
    assert doctor.returncode == 1 and "built from another database" in problems[0]
    subprocess.run([sys.executable, "-m", "searchsvc", "reindex"], env=env, check=True, capture_output=True)
    assert _keys(second, "volcanoes erupt molten magma")[0] == "second/0-volcano.md"


def test_collection_names_like_lock_files_are_ordinary_collections(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = _folder(tmp_path, "notes", ["quokka", "volcano"])
    env = cli_env(settings, fake_openai)
    for name in ("x.lock", "x", "locks", "collections"):
        ingest = subprocess.run(
            [sys.executable, "-m", "searchsvc", "ingest", str(folder), "-c", name],
            env=env,
            capture_output=True,
            text=True,
        )
        assert ingest.returncode == 0, ingest.stderr
    with TestClient(create_app(settings)) as client:
        upsert = {"documents": [{"id": "n1", "text": "Numbats eat termites."}]}
        assert client.post("/v1/collections/default.lock/documents", json=upsert).status_code == 200
        hits = client.post("/v1/search", json={"query": "numbats", "collection": "default.lock", "k": 1}).json()
        assert hits["results"][0]["document_key"] == "n1"
    repair = subprocess.run(
        [sys.executable, "-m", "searchsvc", "doctor", "--repair", "--json"], env=env, capture_output=True, text=True
    )
    assert repair.returncode == 0 and json.loads(repair.stdout)["ok"], repair.stdout + repair.stderr


@faiss_only
def test_the_index_folder_is_named_for_the_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = Store(settings)
    try:
        folder = store.index_folder("docs")
        assert folder.parent.parent.name == f"db-{store.database_id.namespace}"
        assert folder.parent.parent.parent == Path(settings.resolved_index_dir)
    finally:
        store.close()


@faiss_only
def test_every_spelling_of_one_database_url_shares_one_index_folder(tmp_path: Path) -> None:
    """A server on 127.0.0.1 and a CLI on localhost (SQLite: the file reached through a symlinked folder)
    must see the same index files and writer locks."""
    settings = make_settings(tmp_path)
    first = Store(settings)
    try:
        url = settings.resolved_database_url
        if url.startswith("sqlite"):
            database = Path(url.removeprefix("sqlite:///"))
            (tmp_path / "linked").symlink_to(database.parent, target_is_directory=True)
            other_url = f"sqlite:///{tmp_path / 'linked' / database.name}"
        else:
            other_url = url.replace("127.0.0.1", "localhost")
        second = Store(make_settings(tmp_path, database_url=other_url))
        try:
            assert second.index_folder("docs") == first.index_folder("docs")
        finally:
            second.close()
    finally:
        first.close()
