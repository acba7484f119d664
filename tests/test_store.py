"""SQL is the truth and the FAISS index follows it: rebuilds, repairs, deletes, locks, migrations."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect

from searchsvc.errors import CollectionBusyError, InvalidInputError
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage import database
from searchsvc.store import Store
from tests.conftest import SAMPLE_DATA, remote_settings
from tests.fake_openai import FakeOpenAI
from tests.test_remote_provider import MODEL, run_ingest


@pytest.fixture
def ingested(tmp_path: Path, fake_openai: FakeOpenAI):  # type: ignore[no-untyped-def]
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    run_ingest(settings, SAMPLE_DATA / "markdown")
    return settings


def _top_ids(settings, query: str) -> list[int]:  # type: ignore[no-untyped-def]
    provider, store = make_embedding_provider(settings), Store(settings)
    try:
        return [h.chunk_id for h in search(store, provider, "docs", query, k=10).hits]
    finally:
        store.close()
        provider.close()


def test_reindex_rebuilds_from_sql_without_calling_the_api(ingested, fake_openai: FakeOpenAI) -> None:
    before = _top_ids(ingested, "redis persistence")
    shutil.rmtree(ingested.resolved_index_dir)
    calls = len(fake_openai.embedding_requests())
    store = Store(ingested)
    try:
        index = store.rebuild_index(store.get_collection("docs"))
        assert index.count() > 0
    finally:
        store.close()
    assert len(fake_openai.embedding_requests()) == calls
    assert _top_ids(ingested, "redis persistence") == before


def test_an_index_behind_sql_is_repaired_on_open(ingested) -> None:
    store = Store(ingested)
    try:
        collection = store.get_collection("docs")
        index = store.index(collection)
        total = index.count()
        index.remove(index.ids()[:25])
        index.add(np.array([10**9]), np.ones((1, collection.dimension), dtype=np.float32) / 8)
        index.save()
        store.forget_index("docs")
        repaired = store.index(collection)
        assert repaired.count() == total and 10**9 not in set(repaired.ids().tolist())
    finally:
        store.close()


def test_hnsw_collections_handle_updates_and_deletes(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, index_type="hnsw")
    folder = tmp_path / "docs"
    shutil.copytree(SAMPLE_DATA / "markdown", folder)
    run_ingest(settings, folder)
    (folder / "redis" / "README.md").unlink()
    readme = folder / "zstd" / "README.md"
    readme.write_text(readme.read_text() + "\n\n## Quokka\n\nQuokka compression is a fictional feature.\n")
    run_ingest(settings, folder, prune=True)
    provider, store = make_embedding_provider(settings), Store(settings)
    try:
        collection = store.get_collection("docs")
        assert collection.index_type == "hnsw"
        hits = search(store, provider, "docs", "Quokka compression fictional feature", k=50).hits
        assert hits[0].document_key == "docs/zstd/README.md" and "Quokka" in hits[0].text
        assert not any("redis" in h.document_key for h in hits)
        with store.session() as session:
            from searchsvc.storage.repository import chunk_ids

            assert np.array_equal(store.index(collection).ids(), chunk_ids(session, collection.id))
    finally:
        store.close()
        provider.close()


def test_a_second_writer_is_refused_with_a_clear_message(ingested) -> None:
    first, second = Store(ingested), Store(ingested)
    try:
        with (
            first.writer_lock("docs"),
            pytest.raises(CollectionBusyError, match="another process"),
            second.writer_lock("docs"),
        ):
            pass
    finally:
        first.close()
        second.close()


def test_collection_names_cannot_escape_the_index_folder(ingested) -> None:
    store = Store(ingested)
    try:
        for bad in ("../evil", "a/b", "", ".hidden", "x" * 65):
            with pytest.raises(InvalidInputError):
                store.index_folder(bad)
    finally:
        store.close()


def test_migrations_run_from_empty_to_head_and_back(tmp_path: Path) -> None:
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        database.upgrade(engine)
        assert {"collections", "documents", "chunks", "embeddings"} <= set(inspect(engine).get_table_names())
        assert database.current_revision(engine) == database.head_revision()
        database.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        database.upgrade(engine)
        assert database.current_revision(engine) == database.head_revision()
    finally:
        engine.dispose()


def test_migrations_create_exactly_the_tables_the_models_describe(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from searchsvc.storage.schema import Base

    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        database.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": lambda name, kind, _parent: not str(name).startswith("chunks_fts")}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
