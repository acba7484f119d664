"""SQL is the truth and the FAISS index follows it: rebuilds, repairs, deletes, locks, migrations."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text

from searchsvc.config import Settings
from searchsvc.errors import CollectionBusyError, InvalidInputError
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage import database
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, make_settings, postgres_url_or_skip, remote_settings, run_ingest
from tests.fake_embedder import FakeEmbedder
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def ingested(tmp_path: Path, fake_embedder: FakeEmbedder) -> Settings:
    """The sample Markdown ingested with the in-process embedder (the test gets the same one)."""
    settings = make_settings(tmp_path)
    run_ingest(settings, SAMPLE_DATA / "markdown", embedder=fake_embedder)
    return settings


def _top_ids(settings: Settings, embedder: FakeEmbedder, query: str, collection: str = "docs") -> list[int]:
    store = Store(settings)
    try:
        return [h.chunk_id for h in search(store, embedder, collection, query, k=10).hits]
    finally:
        store.close()


def test_reindex_rebuilds_from_sql_without_calling_the_model(ingested, fake_embedder: FakeEmbedder) -> None:
    before = _top_ids(ingested, fake_embedder, "redis persistence")
    calls = len(fake_embedder.calls)
    store = Store(ingested)
    try:
        store.drop_index("docs")
        index = store.rebuild_index(store.get_collection("docs"))
        assert index.count() > 0
    finally:
        store.close()
    assert len(fake_embedder.calls) == calls
    assert _top_ids(ingested, fake_embedder, "redis persistence") == before


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
                store.drop_index(bad)
            with pytest.raises(InvalidInputError), store.writer_lock(bad):
                pass
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return postgres_url_or_skip(f"{tmp_path}/migrations")


def test_migrations_run_from_empty_to_head_and_back(database_url: str) -> None:
    engine = database.create_db_engine(database_url)
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


def test_migrations_create_exactly_the_tables_the_models_describe(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from searchsvc.storage.schema import Base

    derived = ("chunks_fts", "search_vector", "search_length", "ix_chunks_search_vector")  # keyword index (triggers)
    engine = database.create_db_engine(database_url)
    try:
        database.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": lambda name, kind, _parent: not str(name).startswith(derived)}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


OLD_COLLECTION = text(
    "INSERT INTO collections (id, name, provider, embedding_model, dimension, index_type, chunk_tokens, "
    "chunk_overlap, created_at) VALUES (1, 'old', 'local', 'm', 4, 'flat', 256, 32, CURRENT_TIMESTAMP)"
)


def test_upgrading_a_database_of_the_previous_schema_keeps_its_data(database_url: str) -> None:
    from sqlalchemy import text

    engine = database.create_db_engine(database_url)
    try:
        database.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(OLD_COLLECTION)
            conn.execute(
                text(
                    "INSERT INTO documents (id, collection_id, key, source, title, content_hash, metadata, "
                    "chunk_count, token_count, created_at, updated_at) VALUES (1, 1, 'a.md', 'src', "
                    "'Old title', 'h', '{}', 1, 3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO chunks (id, document_id, collection_id, ordinal, text, embed_hash, "
                    "token_count, start_char, end_char, heading_path, metadata) VALUES (1, 1, 1, 0, "
                    "'platypus venom spurs', 'e', 3, 0, 20, '[]', '{}')"
                )
            )
        database.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT text FROM chunks WHERE id = 1")).scalar_one() == "platypus venom spurs"
            from sqlalchemy.orm import Session

            from searchsvc.storage.keyword_index import keyword_search

            with Session(conn) as session:
                assert keyword_search(session, 1, "venom", 5) and keyword_search(session, 1, "title", 5)
    finally:
        engine.dispose()


def test_a_collection_made_only_of_cached_vectors_gets_an_index(ingested, fake_embedder: FakeEmbedder) -> None:
    """Found by tests/test_index_choice.py: with every vector in the cache, no dimension was recorded."""
    calls = len(fake_embedder.calls)
    report = run_ingest(ingested, SAMPLE_DATA / "markdown", collection="copy", embedder=fake_embedder)
    assert report.chunks_cached == report.chunks > 0
    assert len(fake_embedder.calls) == calls
    store = Store(ingested)
    try:
        assert store.index(store.get_collection("copy")).count() == report.chunks
    finally:
        store.close()
    assert _top_ids(ingested, fake_embedder, "redis persistence", collection="copy")


def test_a_collection_left_without_a_dimension_is_repaired_by_the_next_ingest(ingested, fake_embedder) -> None:
    """Collections hit by the cached-vectors bug (dimension NULL, no index) heal on an unchanged re-run."""
    store = Store(ingested)
    try:
        with store.session() as session:
            session.execute(text("UPDATE collections SET dimension = NULL WHERE name = 'docs'"))
            session.commit()
        store.drop_index("docs")
    finally:
        store.close()
    report = run_ingest(ingested, SAMPLE_DATA / "markdown", embedder=fake_embedder)
    assert report.added == report.changed == 0
    assert _top_ids(ingested, fake_embedder, "redis persistence")


def test_upgrading_registers_the_sources_of_older_documents(database_url: str) -> None:
    from sqlalchemy import text

    engine = database.create_db_engine(database_url)
    try:
        database.upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(OLD_COLLECTION)
            for doc_id, key, source, path in (
                (1, "docs/sub/a.md", "docs", "/x/docs/sub/a.md"),
                (2, "docs/b.md", "docs", "/x/docs/b.md"),
                (3, "note-1", "api", None),
                (4, "r1", "recs.jsonl", "/y/recs.jsonl"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO documents (id, collection_id, key, source, path, title, content_hash, "
                        "metadata, chunk_count, token_count, created_at, updated_at) VALUES (:id, 1, :key, "
                        ":source, :path, 't', 'h', '{}', 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": doc_id, "key": key, "source": source, "path": path},
                )
        database.upgrade(engine)
        with engine.connect() as conn:
            rows = sorted(conn.execute(text("SELECT label, location FROM ingest_sources")).all())
        assert rows == [("api", "api:"), ("docs", "/x/docs"), ("recs.jsonl", "/y/recs.jsonl")]
    finally:
        engine.dispose()
