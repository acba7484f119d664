"""group_by document returns k documents whenever k documents match, however long the best ones are."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.store import Store
from tests.conftest import MODEL, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def settings(tmp_path: Path, fake_openai: FakeOpenAI):  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("long-a", "long-b"):  # two documents of ~40 chunks, each about quokkas on the island
        sections = [f"## Part {i}\n\nQuokka island quokka island quokka colony number {i}.\n" for i in range(40)]
        (folder / f"{name}.md").write_text(f"# {name}\n\n" + "\n".join(sections))
    for i in range(10):  # ten short documents that mention quokkas once
        (folder / f"short-{i}.md").write_text(f"# Note {i}\n\nA note on wombats, numbats and one quokka island.\n")
    config = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, chunk_tokens=24, chunk_overlap=0)
    run_ingest(config, folder)
    return config


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_k_documents_come_back_when_long_ones_fill_the_first_candidates(settings, mode: str) -> None:
    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        chunks = search(store, provider, "docs", "quokka island", k=40, mode=mode).hits
        assert {h.document_key for h in chunks[:40]} <= {"docs/long-a.md", "docs/long-b.md"}  # the setup
        grouped = search(store, provider, "docs", "quokka island", k=8, mode=mode, group_by="document").hits
        everything = search(store, provider, "docs", "quokka island", k=50, mode=mode, group_by="document").hits
    finally:
        store.close()
        provider.close()
    assert len(grouped) == 8 and len({h.document_id for h in grouped}) == 8
    assert len(everything) == 12  # every document, and no more
    assert {h.document_key for h in grouped[:2]} == {"docs/long-a.md", "docs/long-b.md"}  # best first
