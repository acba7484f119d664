"""OpenAI's Vector Stores API, driven by the official openai SDK against a real `searchsvc serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import cli_env, make_settings
from tests.servers import serving

pytestmark = pytest.mark.openai_compat

KEY = "sk-test-rw"
NOTES = {
    "lions.md": ("# Lions\n\nLions live in prides on the African savanna and hunt zebras at night.\n", "biology", 2019),
    "comets.md": ("# Comets\n\nComets are icy bodies whose tails point away from the sun.\n", "astronomy", 2021),
    "tides.md": ("# Tides\n\nTides rise and fall twice a day, pulled by the moon's gravity.\n", "astronomy", 2015),
}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("stores"))
    env = cli_env(settings, SEARCHSVC_API_KEYS=f"{KEY}:rw", SEARCHSVC_JOB_HEARTBEAT_SECONDS="0.5")
    with serving(env) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def notes(client: OpenAI) -> tuple[str, dict[str, str]]:
    """A vector store with three notes, each with attributes, added with create_and_poll."""
    store = client.vector_stores.create(name="notes", metadata={"team": "science"})
    ids = {}
    for name, (text, topic, year) in NOTES.items():
        uploaded = client.files.create(file=(name, text.encode()), purpose="assistants")
        added = client.vector_stores.files.create_and_poll(
            vector_store_id=store.id,
            file_id=uploaded.id,
            attributes={"topic": topic, "year": year},
            poll_interval_ms=200,
        )
        assert added.status == "completed", added
        ids[name] = uploaded.id
    return store.id, ids


def test_a_store_is_created_described_listed_updated_and_deleted(client: OpenAI) -> None:
    store = client.vector_stores.create(
        name="scratch", metadata={"k": "v"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert store.object == "vector_store" and store.name == "scratch" and store.metadata == {"k": "v"}
    assert (
        store.status == "completed"
        and store.file_counts.total == 0
        and store.expires_at == store.last_active_at + 7 * 86400
    )
    assert client.vector_stores.retrieve(store.id).name == "scratch"
    assert store.id in [s.id for s in client.vector_stores.list(limit=1)]  # the SDK follows the cursor
    updated = client.vector_stores.update(store.id, name="renamed", metadata={"k": "w"})
    assert (updated.name, updated.metadata) == ("renamed", {"k": "w"})
    deleted = client.vector_stores.delete(store.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (store.id, True, "vector_store.deleted")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_files_become_searchable_with_their_attributes(client: OpenAI, notes) -> None:
    store_id, ids = notes
    store = client.vector_stores.retrieve(store_id)
    assert store.file_counts.completed == 3 and store.status == "completed" and store.usage_bytes > 0
    page = client.vector_stores.search(store_id, query="Which animals hunt zebras?", max_num_results=2)
    top = page.data[0]
    assert (top.file_id, top.filename, top.attributes) == (
        ids["lions.md"],
        "lions.md",
        {"topic": "biology", "year": 2019},
    )
    assert 0 < top.score <= 1 and "zebras" in top.content[0].text and top.content[0].type == "text"
    assert len(page.data) <= 2 and page.data[0].score >= page.data[-1].score


def test_search_with_a_compound_filter_and_a_score_threshold(client: OpenAI, notes) -> None:
    store_id, ids = notes
    recent_astronomy = {"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "astronomy"},
                                                   {"type": "gte", "key": "year", "value": 2020}]}  # fmt: skip
    page = client.vector_stores.search(store_id, query="icy bodies and the moon", filters=recent_astronomy)
    assert [r.file_id for r in page.data] == [ids["comets.md"]]
    either = {"type": "or", "filters": [{"type": "eq", "key": "topic", "value": "biology"},
                                        {"type": "lt", "key": "year", "value": 2016}]}  # fmt: skip
    found = {r.file_id for r in client.vector_stores.search(store_id, query="nature", filters=either).data}
    assert found == {ids["lions.md"], ids["tides.md"]}
    none = client.vector_stores.search(store_id, query="zebras", filters={"type": "in", "key": "topic", "value": ["x"]})
    assert none.data == []
    strict = client.vector_stores.search(store_id, query="zebras", ranking_options={"score_threshold": 0.99})
    assert all(r.score >= 0.99 for r in strict.data)


def test_attributes_update_applies_at_once_and_a_removed_file_leaves_search(client: OpenAI, notes) -> None:
    store_id, ids = notes
    tides = ids["tides.md"]
    updated = client.vector_stores.files.update(file_id=tides, vector_store_id=store_id, attributes={"topic": "oceans"})
    assert updated.attributes == {"topic": "oceans"}
    oceans = client.vector_stores.search(
        store_id, query="moon", filters={"type": "eq", "key": "topic", "value": "oceans"}
    )
    assert [r.file_id for r in oceans.data] == [tides] and oceans.data[0].attributes == {"topic": "oceans"}
    content = list(client.vector_stores.files.content(file_id=tides, vector_store_id=store_id))
    assert "twice a day" in content[0].text
    removed = client.vector_stores.files.delete(file_id=tides, vector_store_id=store_id)
    assert removed.deleted
    assert tides not in {r.file_id for r in client.vector_stores.search(store_id, query="tides moon gravity").data}
    assert client.files.retrieve(tides).id == tides  # the uploaded file stays


def test_deleting_a_file_removes_it_from_every_store(client: OpenAI) -> None:
    uploaded = client.files.create(
        file=("quokka.md", b"# Quokka\n\nQuokkas live on Rottnest Island.\n"), purpose="assistants"
    )
    stores = [client.vector_stores.create(name=f"s{n}", file_ids=[uploaded.id]) for n in range(2)]
    for store in stores:
        polled = client.vector_stores.files.poll(uploaded.id, vector_store_id=store.id, poll_interval_ms=200)
        assert polled.status == "completed"
    client.files.delete(uploaded.id)
    for store in stores:
        assert client.vector_stores.search(store.id, query="quokka").data == []
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_a_file_batch_in_both_body_forms_with_static_chunking(client: OpenAI, base_url: str) -> None:
    store = client.vector_stores.create(name="batch")
    texts = [(f"doc-{n}.txt", (f"Paragraph {n} about subject{n}. " * 60).encode()) for n in range(4)]
    batch = client.vector_stores.file_batches.upload_and_poll(
        store.id,
        files=texts[:2],
        chunking_strategy=_static(100, 20),
        poll_interval_ms=200,
    )
    assert (
        batch.status == "completed" and batch.file_counts.completed == 2 and batch.object == "vector_store.files_batch"
    )
    listed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    assert len(listed) == 2 and all(f.chunking_strategy.static.max_chunk_size_tokens == 100 for f in listed)
    headers = {"Authorization": f"Bearer {KEY}"}
    native = base_url.removesuffix("/v1")
    key = f"{listed[0].id}/{client.files.retrieve(listed[0].id).filename}"
    document = httpx.get(f"{native}/v1/collections/{store.id}/documents/{key}", headers=headers).json()
    sizes = [chunk["tokens"] for chunk in document["chunks"]]
    assert len(sizes) >= 4 and max(sizes) <= 100 and min(sizes[:-1]) > 60, sizes  # honoured: 100 tokens a chunk
    uploaded = [client.files.create(file=t, purpose="assistants").id for t in texts[2:]]
    body = {
        "files": [{"file_id": uploaded[0], "attributes": {"n": 2}}, {"file_id": uploaded[1], "attributes": {"n": 3}}]
    }
    created = httpx.post(f"{base_url}/vector_stores/{store.id}/file_batches", json=body, headers=headers).json()
    done = client.vector_stores.file_batches.poll(created["id"], vector_store_id=store.id, poll_interval_ms=200)
    assert done.file_counts.completed == 2
    hit = client.vector_stores.search(store.id, query="subject3", filters={"type": "eq", "key": "n", "value": 3}).data
    assert hit and hit[0].file_id == uploaded[1]


def test_bad_requests_get_openais_error_shape(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(name="x", file_ids=["file-missing"])
    store = client.vector_stores.create(name="errors")
    with pytest.raises(openai.BadRequestError) as bad_filter:
        client.vector_stores.search(store.id, query="q", filters={"type": "near", "key": "a", "value": 1})
    assert "unknown filter type" in bad_filter.value.body["message"]
    with pytest.raises(openai.BadRequestError) as too_many:
        client.vector_stores.search(store.id, query="q", max_num_results=51)
    assert too_many.value.body["param"] == "max_num_results"
    with pytest.raises(openai.BadRequestError) as overlap:
        client.vector_stores.files.create(
            vector_store_id=store.id, file_id="file-x", chunking_strategy=_static(100, 60)
        )
    assert "half" in overlap.value.body["message"]
    uploaded = client.files.create(file=("a.md", b"# A\n\nwords"), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as too_large:
        client.vector_stores.files.create(
            vector_store_id=store.id, file_id=uploaded.id, chunking_strategy=_static(4096, 0)
        )
    assert "tokens this vector store's embedding model" in too_large.value.body["message"]
    assert json.loads(too_large.value.response.text)["error"]["param"] == "chunking_strategy"


def _static(size: int, overlap: int) -> dict[str, Any]:
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}
