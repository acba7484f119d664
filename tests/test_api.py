"""Route tests: a real app on a real SQLite file and FAISS index, embeddings and chat from the fake server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from searchsvc.answering.prompt import REWRITE_PROMPT
from searchsvc.api.app import create_app
from tests.conftest import MODEL, SAMPLE_DATA, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault

RW, RO = "rw-secret-key-123", "ro-secret-key-456"


@pytest.fixture
def api(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[TestClient]:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, collection="docs")
    run_ingest(settings, SAMPLE_DATA / "markdown")
    with TestClient(create_app(settings)) as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


def sse_events(response) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_search_returns_ranked_chunks_with_locations_and_timings(api: TestClient) -> None:
    body = api.post("/v1/search", json={"query": "redis persistence", "k": 4}).json()
    first = body["results"][0]
    assert first["document_key"] == "markdown/redis/README.md"
    assert {
        "chunk_id",
        "score",
        "document_id",
        "path",
        "title",
        "heading_path",
        "line_start",
        "line_end",
        "page",
        "text",
        "metadata",
    } <= set(first)
    assert first["line_start"] <= first["line_end"] and body["timings_ms"]["embed_ms"] >= 0
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "payload,status",
    [
        ({"query": "x", "k": 0}, 422),
        ({"query": "x", "k": 1001}, 422),
        ({"query": "x" * 5000}, 422),
        ({"query": "   "}, 422),
        ({"query": "x", "unknown": 1}, 422),
        ({"query": "x", "collection": "../etc"}, 422),
        ({"query": "x", "min_score": 3}, 422),
        ({"query": "x", "filter": {"year": {"$regex": "a"}}}, 400),
        ({"query": "x", "filter": {"year": {"$in": []}}}, 400),
        ({"query": "x", "filter": {"year": {"$gt": [1]}}}, 400),
        ({"query": "x", "group_by": "chapter"}, 422),
    ],
)
def test_bad_search_requests_get_a_4xx_in_one_error_shape(api: TestClient, payload: dict, status: int) -> None:
    response = api.post("/v1/search", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] and error["message"]


def test_oversized_bodies_are_refused_with_413(api: TestClient) -> None:
    big = {"documents": [{"id": "big", "text": "x" * (11 * 1024 * 1024)}]}
    response = api.post("/v1/collections/docs/documents", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_documents_upsert_list_fetch_delete(api: TestClient) -> None:
    docs = [
        {
            "id": f"note-{i}",
            "text": f"Quokkas number {i} live on Rottnest island.",
            "title": f"Note {i}",
            "metadata": {"i": i},
        }
        for i in range(3)
    ]
    report = api.post("/v1/collections/docs/documents", json={"documents": docs}).json()
    assert report["added"] == 3
    again = api.post("/v1/collections/docs/documents", json={"documents": docs}).json()
    assert again["unchanged"] == 3 and again["tokens_embedded"] == 0
    page = api.get("/v1/collections/docs/documents", params={"limit": 2, "offset": 0}).json()
    assert len(page["documents"]) == 2 and page["total"] > 3
    one = api.get("/v1/collections/docs/documents/note-1").json()
    assert one["title"] == "Note 1" and one["metadata"] == {"i": 1} and one["chunks"][0]["text"].startswith("Quokkas")
    hits = api.post("/v1/search", json={"query": "quokkas Rottnest island", "k": 3}).json()["results"]
    assert {h["document_key"] for h in hits} == {"note-0", "note-1", "note-2"}
    assert api.delete("/v1/collections/docs/documents/note-1").json()["chunks_removed"] == 1
    assert api.get("/v1/collections/docs/documents/note-1").status_code == 404
    hits = api.post("/v1/search", json={"query": "quokkas Rottnest island", "k": 3}).json()["results"]
    assert "note-1" not in {h["document_key"] for h in hits}
    assert api.delete("/v1/collections/docs/documents/note-1").status_code == 404


def test_collections_create_list_delete(api: TestClient) -> None:
    created = api.post("/v1/collections", json={"name": "notes", "index_type": "hnsw"})
    assert created.status_code == 201 and created.json()["embedding_model"] == MODEL
    names = [c["name"] for c in api.get("/v1/collections").json()["collections"]]
    assert names == ["docs", "notes"]
    assert api.post("/v1/collections", json={"name": "bad/name"}).status_code == 422
    assert api.delete("/v1/collections/notes").json() == {"deleted": "notes"}
    assert api.get("/v1/collections/notes").status_code == 404
    verdict = api.get("/v1/collections/docs/health").json()
    assert verdict["ok"] is True and verdict["problems"] == [] and verdict["chunks"] == verdict["vectors"] > 0
    assert api.get("/v1/collections/notes/health").status_code == 404
    assert api.get("/v1/access").json() == {"keys_required": False, "scope": "rw"}


def _filter_docs(api: TestClient) -> None:
    docs = [
        {
            "id": f"paper-{i}",
            "text": f"Study {i} of coral reef bleaching and ocean temperature.",
            "metadata": {
                "year": 1990 + i,
                "kind": "ab"[i % 2] if i < 50 else "c",
                "published": f"20{i % 30:02d}-06-01",
                "open": i % 3 == 0,
            },
        }
        for i in range(60)
    ]
    assert api.post("/v1/collections/papers/documents", json={"documents": docs}).status_code == 200


@pytest.mark.parametrize(
    "flt,expected",
    [
        ({"year": 2000}, {10}),
        ({"kind": "c"}, set(range(50, 60))),
        ({"kind": {"$in": ["c"]}, "year": {"$ne": 2045}}, set(range(50, 60)) - {55}),
        ({"kind": {"$nin": ["a", "b"]}}, set(range(50, 60))),
        ({"year": {"$gt": 2045}}, set(range(56, 60))),
        ({"year": {"$gte": 2045, "$lt": 2047}}, {55, 56}),
        ({"year": {"$lte": 1991}}, {0, 1}),
        ({"published": {"$gte": "2028-01-01"}}, {28, 29, 58, 59}),
        ({"open": True, "year": {"$lt": 1999}}, {0, 3, 6}),
        ({"key": {"$in": ["paper-7", "paper-8"]}}, {7, 8}),
    ],
)
def test_filters_honour_every_operator_and_still_return_k(api: TestClient, flt: dict, expected: set[int]) -> None:
    _filter_docs(api)
    body = {"query": "coral reef bleaching", "k": len(expected), "collection": "papers", "filter": flt}
    hits = api.post("/v1/search", json=body).json()["results"]
    assert {int(h["document_key"].split("-")[1]) for h in hits} == expected


def test_auth_keys_read_only_and_never_logged(tmp_path: Path, fake_openai: FakeOpenAI, caplog) -> None:
    settings = remote_settings(
        tmp_path, fake_openai, embedding_model=MODEL, collection="docs", api_keys=f"{RW}:rw,{RO}:ro"
    )
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis")
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings)) as client:
        query = {"query": "redis", "k": 1}
        assert client.post("/v1/search", json=query).status_code == 401
        assert client.post("/v1/search", json=query, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/v1/search", json=query, headers={"Authorization": f"Basic {RW}"}).status_code == 401
        assert client.post("/v1/search", json=query, headers={"Authorization": f"Bearer {RO}"}).status_code == 200
        write = {"documents": [{"id": "x", "text": "hello there"}]}
        denied = client.post("/v1/collections/docs/documents", json=write, headers={"Authorization": f"Bearer {RO}"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
        allowed = client.post("/v1/collections/docs/documents", json=write, headers={"Authorization": f"Bearer {RW}"})
        assert allowed.status_code == 200
        assert client.get("/healthz").status_code == 200  # health is open
        scopes = [client.get("/v1/access", headers={"Authorization": f"Bearer {k}"}).json() for k in (RW, RO)]
        assert [s["scope"] for s in scopes] == ["rw", "ro"] and scopes[0]["keys_required"] is True
        assert client.get("/v1/access").status_code == 401
        assert RW not in client.get("/metrics").text
    logged = "\n".join(record.getMessage() + json.dumps(getattr(record, "fields", {})) for record in caplog.records)
    assert "request" in logged and RW not in logged and RO not in logged


def test_ask_sends_numbered_sources_and_drops_invented_citations(api: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "Redis keeps data in memory [1] and can persist it [2][7]. It is fast [9]."
    body = api.post(
        "/v1/ask",
        json={
            "question": "How does Redis persist data?",
            "k": 3,
            "min_score": -1,
            "temperature": 0.1,
            "max_tokens": 50,
            "top_p": 0.9,
            "stop": ["END"],
            "frequency_penalty": 0.5,
            "presence_penalty": 0.2,
            "top_k": 40,
            "repetition_penalty": 1.1,
            "seed": 7,
            "logit_bias": {"1734": -100},
        },
    ).json()
    assert body["mode"] == "generative" and body["answered"]
    assert body["answer"] == "Redis keeps data in memory [1] and can persist it [2]. It is fast."
    assert body["invalid_citations"] == 2
    sources = {s["number"]: s for s in body["sources"]}
    assert [c["number"] for c in body["citations"]] == [1, 2]
    for citation in body["citations"]:
        source = sources[citation["number"]]
        assert citation["chunk_id"] == source["chunk_id"] and citation["quote"] in source["text"]
    sent = fake_openai.chat_requests()[-1].body
    prompt = sent["messages"][-1]["content"]
    for number, source in sources.items():
        assert f'<source id="{number}"' in prompt and source["text"][:80] in prompt
    assert {
        k: sent[k]
        for k in (
            "temperature",
            "max_tokens",
            "top_p",
            "stop",
            "frequency_penalty",
            "presence_penalty",
            "top_k",
            "repetition_penalty",
            "seed",
            "logit_bias",
        )
    } == {
        "temperature": 0.1,
        "max_tokens": 50,
        "top_p": 0.9,
        "stop": ["END"],
        "frequency_penalty": 0.5,
        "presence_penalty": 0.2,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "seed": 7,
        "logit_bias": {"1734": -100},
    }
    refused = api.post("/v1/ask", json={"question": "Redis?", "logit_bias": {"Redis": 5}})
    assert refused.status_code == 422 and "token ids" in refused.text


def test_ask_without_relevant_sources_says_it_does_not_know(api: TestClient, fake_openai: FakeOpenAI) -> None:
    body = api.post("/v1/ask", json={"question": "zebra giraffe savanna", "min_score": 0.99}).json()
    assert body["answered"] is False and "don't know" in body["answer"] and body["citations"] == []
    assert fake_openai.chat_requests() == []


def test_ask_streams_sources_then_deltas_then_citations(api: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "Redis persists with snapshots [1] and an append only file [4][2]."
    with api.stream(
        "POST", "/v1/ask", json={"question": "redis persistence", "k": 2, "stream": True, "min_score": -1}
    ) as response:
        response.read()
    events = sse_events(response)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert "[4]" not in streamed and "[1]" in streamed and "[2]" in streamed
    done = events[-1][1]
    assert done["invalid_citations"] == 1 and [c["number"] for c in done["citations"]] == [1, 2]
    assert done["usage"]["total_tokens"] > 0


def test_a_cut_stream_tells_the_client(api: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = "one two three four five six seven eight"
    fake_openai.queue(Fault("cut_stream", only="/chat/completions"))
    with api.stream("POST", "/v1/ask", json={"question": "redis", "stream": True, "min_score": -1}) as response:
        response.read()
    name, data = sse_events(response)[-1]
    assert name == "error" and data["error"]["code"] == "stream_cut"


def test_models_are_compared_on_the_same_context(api: TestClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.chat_reply = lambda messages: "Answer [1]."
    body = api.post(
        "/v1/ask", json={"question": "redis persistence", "models": ["model-a", "model-b"], "min_score": -1}
    ).json()
    assert [a["model"] for a in body["answers"]] == ["model-a", "model-b"]
    assert all(a["latency_ms"] >= 0 and a["usage"]["total_tokens"] > 0 for a in body["answers"])
    prompts = {r.body["model"]: r.body["messages"] for r in fake_openai.chat_requests()}
    assert prompts["model-a"] == prompts["model-b"]


def test_follow_up_questions_are_rewritten_with_the_conversation(api: TestClient, fake_openai: FakeOpenAI) -> None:
    def reply(messages: list[dict]) -> str:
        if messages[0]["content"] == REWRITE_PROMPT:
            return "zstd compression level settings"
        return "Levels go from 1 to 19 [1]."

    fake_openai.chat_reply = reply
    first = api.post("/v1/ask", json={"question": "What is zstd?", "conversation_id": "c1", "min_score": -1}).json()
    assert first["conversation_id"] == "c1"
    second = api.post(
        "/v1/ask", json={"question": "Which levels does it offer?", "conversation_id": "c1", "min_score": -1}
    ).json()
    assert second["standalone_query"] == "zstd compression level settings"
    rewrite = next(r.body for r in fake_openai.chat_requests() if r.body["messages"][0]["content"] == REWRITE_PROMPT)
    assert [m["content"] for m in rewrite["messages"][1:]] == [
        "What is zstd?",
        first["answer"],
        "Which levels does it offer?",
    ]
    assert second["sources"][0]["document_key"].startswith("markdown/zstd/")
    thread = api.get("/v1/conversations/c1").json()
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    assert api.delete("/v1/conversations/c1").status_code == 200
    assert api.get("/v1/conversations/c1").status_code == 404


def test_health_readiness_and_metrics(api: TestClient) -> None:
    api.post("/v1/search", json={"query": "redis", "k": 1})
    ready = api.get("/readyz").json()
    assert ready["status"] == "ready" and ready["indexes"]["docs"] > 0
    metrics = api.get("/metrics").text
    assert 'searchsvc_http_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert "searchsvc_http_request_seconds_bucket" in metrics
    assert 'searchsvc_index_vectors{collection="docs"}' in metrics
    assert "searchsvc_embedding_tokens_total" in metrics


def test_a_running_server_sees_a_separate_ingest_within_seconds(
    api: TestClient, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "wombat.md").write_text("# Wombats\n\nWombats produce cube shaped droppings.\n")
    settings = api.settings  # type: ignore[attr-defined]
    env = cli_env(settings, fake_openai)
    subprocess.run(
        [sys.executable, "-m", "searchsvc", "ingest", str(folder), "-c", "docs"],
        env=env,
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = api.post("/v1/search", json={"query": "wombats cube shaped droppings", "k": 1}).json()["results"]
        if hits and hits[0]["document_key"] == "extra/wombat.md":
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server did not see the new document within 10 s")


def test_without_a_provider_answers_are_extractive_with_real_citations(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, collection="docs")
    run_ingest(settings, SAMPLE_DATA / "markdown" / "zstd")
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/ask", json={"question": "How fast is Zstandard decompression?"}).json()
        assert body["mode"] == "extractive" and body["answered"]
        sources = {s["number"]: s for s in body["sources"]}
        assert body["citations"] and body["invalid_citations"] == 0
        for citation in body["citations"]:
            assert f"[{citation['number']}]" in body["answer"]
            assert citation["quote"] in sources[citation["number"]]["text"]
        stream = client.post("/v1/ask", json={"question": "How fast is Zstandard decompression?", "stream": True})
        names = [name for name, _ in sse_events(stream)]
        assert names == ["sources", "delta", "done"]


def test_cli_ask_prints_an_answer_with_sources(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, SAMPLE_DATA / "markdown" / "redis", collection="default")
    fake_openai.chat_reply = "Redis is an in-memory data structure store [1] and more [5]."
    env = cli_env(settings, fake_openai)
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", "ask", "What is Redis?", "-k", "3"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("Redis is an in-memory data structure store [1] and more.")
    assert "[1] " in result.stdout and "README.md" in result.stdout


def test_search_modes_over_http(api: TestClient) -> None:
    for mode in ("vector", "keyword", "hybrid"):
        body = api.post("/v1/search", json={"query": "redis append only file", "k": 3, "mode": mode}).json()
        assert body["mode"] == mode and body["results"]
    keyword = api.post("/v1/search", json={"query": "redis append only file", "k": 3, "mode": "keyword"}).json()
    assert all(r["keyword_score"] is not None for r in keyword["results"])
    assert api.post("/v1/search", json={"query": "x", "mode": "fuzzy"}).status_code == 422


def test_concurrent_upserts_are_written_together_and_none_is_lost(api: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def upsert(i: int) -> dict:
        docs = [
            {"id": f"c{i}-{j}", "text": f"Concurrent note {i} {j} about quokka number {i * 10 + j}."} for j in range(2)
        ]
        response = api.post("/v1/collections/docs/documents", json={"documents": docs})
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(16) as pool:
        reports = list(pool.map(upsert, range(32)))
    assert all(r["added"] == 2 for r in reports)
    assert max(r["written_with_requests"] for r in reports) > 1  # group commit happened
    listing = api.get("/v1/collections/docs/documents", params={"limit": 500}).json()
    assert {f"c{i}-{j}" for i in range(32) for j in range(2)} <= {d["id"] for d in listing["documents"]}


def test_min_score_floors_fit_each_modes_scale(api: TestClient) -> None:
    query = {"query": "redis append only file persistence", "k": 10}
    keyword = api.post("/v1/search", json={**query, "mode": "keyword"}).json()["results"]
    floor = sorted(h["keyword_score"] for h in keyword)[len(keyword) // 2]
    high = api.post("/v1/search", json={**query, "mode": "keyword", "min_score": 7.5})  # bm25 runs past 1
    assert high.status_code == 200
    floored = api.post("/v1/search", json={**query, "mode": "keyword", "min_score": floor}).json()["results"]
    assert floored and all(h["keyword_score"] >= floor for h in floored) and len(floored) < len(keyword)
    for mode, bad in (("vector", 1.5), ("hybrid", -2), ("keyword", -0.5)):
        refused = api.post("/v1/search", json={**query, "mode": mode, "min_score": bad})
        assert refused.status_code == 422 and "floor on" in refused.json()["error"]["message"], (mode, refused.text)


def test_limits_are_named_in_the_error_with_what_to_do(api: TestClient) -> None:
    many = {"documents": [{"id": f"d{i}", "text": "x"} for i in range(1001)]}
    response = api.post("/v1/collections/docs/documents", json=many)
    assert response.status_code == 422 and "at most 1,000 documents per request" in response.json()["error"]["message"]
    long_query = api.post("/v1/search", json={"query": "x" * 4097})
    assert long_query.status_code == 422 and "limited to 4,096 characters" in long_query.json()["error"]["message"]
    big = {"documents": [{"id": "big", "text": "x" * (11 * 1024 * 1024)}]}
    too_large = api.post("/v1/collections/docs/documents", json=big)
    assert too_large.status_code == 413 and "SEARCHSVC_MAX_BODY_BYTES" in too_large.json()["error"]["message"]


@pytest.mark.parametrize("model", ["bad\u0000model", "half\udb4dsurrogate", "tab\there"])
def test_model_names_with_control_characters_are_a_422(api: TestClient, model: str) -> None:
    """Found by schemathesis on PostgreSQL: a NUL in a model name reached SQL and ended as a 500."""
    headers = {"content-type": "application/json"}  # json.dumps escapes what UTF-8 cannot carry, as clients do
    body = json.dumps({"name": "odd", "embedding_model": model})
    created = api.post("/v1/collections", content=body, headers=headers)
    assert created.status_code == 422 and "embedding_model" in created.json()["error"]["message"]
    asked = api.post("/v1/ask", content=json.dumps({"question": "what is redis?", "model": model}), headers=headers)
    assert asked.status_code == 422
