"""Filters at their documented limits, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.api.app import create_app
from tests.conftest import MODEL, remote_settings
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def api(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[TestClient]:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="papers")
    docs = [
        {"id": f"p{i}", "text": f"Study {i} of coral reefs.", "metadata": {"n": i, "tag": f"t{i}", "open": i % 2 == 0}}
        for i in range(20)
    ]
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/collections/papers/documents", json={"documents": docs}).status_code == 200
        yield client


def _ids(client: TestClient, flt: dict, mode: str = "hybrid") -> set[int]:
    response = client.post("/v1/search", json={"query": "coral reefs", "k": 20, "filter": flt, "mode": mode})
    assert response.status_code == 200, response.text
    return {int(hit["document_key"][1:]) for hit in response.json()["results"]}


@pytest.mark.parametrize("size", [999, 1000])
@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_in_and_nin_take_the_documented_thousand_values(api: TestClient, size: int, mode: str) -> None:
    numbers = [3, 5, *range(1000, 1000 + size - 2)]
    assert _ids(api, {"n": {"$in": numbers}}, mode) == {3, 5}
    assert _ids(api, {"n": {"$nin": numbers}}, mode) == set(range(20)) - {3, 5}
    tags = ["t7", *(f"x{i}" for i in range(size - 1))]
    assert _ids(api, {"tag": {"$in": tags}}, mode) == {7}
    keys = ["p8", *(f"nope-{i}" for i in range(size - 1))]
    assert _ids(api, {"key": {"$in": keys}}, mode) == {8}
    assert _ids(api, {"n": {"$gte": 18}}, mode) == {18, 19}  # the connection is still good


def test_more_than_a_thousand_values_is_a_400_that_says_the_limit(api: TestClient) -> None:
    response = api.post("/v1/search", json={"query": "coral", "filter": {"n": {"$in": list(range(1001))}}})
    assert response.status_code == 400 and "1 to 1,000 values, got 1001" in response.json()["error"]["message"]


def test_mixed_types_in_one_list_and_typed_fields(api: TestClient) -> None:
    assert _ids(api, {"tag": {"$in": ["t2", 2, True]}}) == {2}
    assert _ids(api, {"open": {"$in": [True]}, "n": {"$lt": 5}}) == {0, 2, 4}
    wrong = api.post("/v1/search", json={"query": "coral", "filter": {"key": {"$in": ["p1", 5]}}})
    assert wrong.status_code == 400 and "'key' compares str values" in wrong.json()["error"]["message"]
    assert api.post("/v1/search", json={"query": "coral", "filter": {"page": "one"}}).status_code == 400


def test_values_compare_only_with_values_of_their_json_type(api: TestClient) -> None:
    assert _ids(api, {"tag": {"$lt": 1}}) == set()  # strings are not numbers (SQLite's CAST made them 0.0)
    assert _ids(api, {"n": "3"}) == set() and _ids(api, {"n": 3}) == {3}
    assert _ids(api, {"open": 1}) == set() and len(_ids(api, {"open": True})) == 10


def test_nin_with_values_of_several_types_excludes_each(api: TestClient) -> None:
    assert _ids(api, {"tag": {"$nin": ["t1", 5, False]}}) == set(range(20)) - {1}
    assert _ids(api, {"n": {"$nin": ["x", 4, 5]}}) == set(range(20)) - {4, 5}
    refused = api.post("/v1/search", json={"query": "coral", "filter": {'we"ird': 1}})
    assert refused.status_code == 400


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_and_and_or_combine_whole_filters_in_every_mode(api: TestClient, mode: str) -> None:
    either = {"$or": [{"n": {"$lt": 3}}, {"$and": [{"open": True}, {"n": {"$gte": 16}}]}]}
    assert _ids(api, either, mode) == {0, 1, 2, 16, 18}
    assert _ids(api, {"$and": [{"n": {"$gt": 4}}, {"n": {"$lt": 7}}], "tag": {"$ne": "t5"}}, mode) == {6}


def test_bad_combinations_are_a_400_that_says_why(api: TestClient) -> None:
    deep: dict = {"n": 1}
    for _ in range(5):
        deep = {"$or": [deep]}
    for flt, says in [({"$or": []}, "list of 1 to 32"), ({"$and": [{}]}, "non-empty JSON object"), (deep, "4 deep")]:
        response = api.post("/v1/search", json={"query": "coral", "filter": flt})
        assert response.status_code == 400 and says in response.json()["error"]["message"], response.text
