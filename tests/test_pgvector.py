"""The pgvector backend beyond the shared contract: filtered HNSW searches, halfvec, clear configuration
errors, servers on separate data folders (standing in for machines) sharing one database, and a
streaming standby serving searches."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from searchsvc.config import Settings
from searchsvc.errors import ConfigError, ReadOnlyDatabaseError, StorageError
from searchsvc.search import search
from searchsvc.storage.database import open_database
from searchsvc.storage.index_policy import EXACT_FILTER_MAX, IndexPolicy
from searchsvc.storage.pg_params import BigintArray, use_binary_arrays
from searchsvc.storage.pgvector_index import PgVectorBackend
from searchsvc.storage.schema import Document
from searchsvc.store import Store
from tests.conftest import (
    MODEL,
    SAMPLE_DATA,
    cli_env,
    make_settings,
    pgvector_url_or_skip,
    postgres_url_or_skip,
    remote_settings,
    run_ingest,
    unit_vectors,
)
from tests.fake_embedder import FakeEmbedder
from tests.fake_openai import FakeOpenAI
from tests.postgres import PGVECTOR
from tests.servers import free_port, start_server

pytestmark = pytest.mark.pgvector


def test_allowed_ids_reach_postgresql_as_one_bigint_array_whatever_their_values(tmp_path: Path) -> None:
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    cases = [np.array([], dtype=np.int64), np.array([7]), np.arange(1, 30_001) * 3, np.array([1, 2**40, 2**62])]
    with engine.connect() as conn:
        use_binary_arrays(conn.connection.driver_connection)
        for ids in cases:
            sql = "SELECT pg_typeof(%(ids)s)::text, %(ids)s"
            kind, got = conn.exec_driver_sql(sql, {"ids": BigintArray(ids)}).one()
            assert kind == "bigint[]" and got == ids.tolist()
    engine.dispose()


def test_filtered_hnsw_searches_return_k_of_k_at_every_selectivity(tmp_path: Path) -> None:
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    backend = PgVectorBackend(engine, IndexPolicy(hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=40))
    index = backend.create("docs", "m", 16, "hnsw", ("db", 1))
    count = 4 * EXACT_FILTER_MAX
    vectors = unit_vectors(count, 16, seed=1)
    ids = np.arange(1, count + 1, dtype=np.int64)
    index.add(ids, vectors)
    index.save()  # builds the HNSW graph
    with engine.connect() as conn:  # what autovacuum does in time: with statistics, the planner favours the graph
        conn.execute(text(f"ANALYZE {index.table}"))
        conn.commit()
    rng = np.random.default_rng(2)
    # The exact path (0.2, 0.005) first: psycopg prepares a statement run five times, and a generic plan may
    # avoid the graph by chance; the first five runs are planned for their ids, and with statistics the
    # planner would walk the graph, post-filtered, unless the query rules it out.
    for fraction in (0.2, 0.005, 0.5, 0.3):  # then graph walks with iterative scan (0.5, 0.3)
        allowed = np.sort(rng.choice(ids, int(fraction * count), replace=False))
        for query in unit_vectors(5, 16, seed=3):
            scores, found = index.search(query[None, :], 50, allowed)
            assert (found[0] >= 0).sum() == 50 and np.isin(found[0], allowed).all()
            assert np.all(np.diff(scores[0]) <= 1e-6)  # best first
            exact = allowed[np.argsort(-(vectors[allowed - 1] @ query))[:50]]
            assert len(set(found[0].tolist()) & set(exact.tolist())) >= 45  # recall@50 of the filtered walk
    engine.dispose()


def test_an_unfiltered_walk_past_deleted_neighbours_still_returns_k(tmp_path: Path) -> None:
    """Unfiltered searches walk without iterative scan; when the rows the graph still points at are
    gone (deleted, not yet vacuumed), the search walks on and returns k live rows."""
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    backend = PgVectorBackend(engine, IndexPolicy(hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=10))
    index = backend.create("gone", "m", 16, "hnsw", ("db", 1))
    vectors = unit_vectors(2_000, 16, seed=6)
    ids = np.arange(1, 2_001, dtype=np.int64)
    index.add(ids, vectors)
    index.save()
    query = vectors[0]
    nearest = ids[np.argsort(-(vectors @ query))[:300]]
    index.remove(nearest)
    index.save()
    scores, found = index.search(query[None, :], 10)
    live = np.setdiff1d(ids, nearest)
    assert (found[0] >= 0).sum() == 10 and np.isin(found[0], live).all()
    assert np.all(np.diff(scores[0]) <= 1e-6)
    engine.dispose()


def test_a_search_deeper_than_pgvectors_ef_search_limit_returns_k(tmp_path: Path) -> None:
    """pgvector caps hnsw.ef_search at 1000; a deeper search (a grouped one deepens up to 10,000) walks
    at the cap and then on with iterative scan, instead of failing on the setting."""
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    backend = PgVectorBackend(engine, IndexPolicy(hnsw_m=8, hnsw_ef_construction=32))
    index = backend.create("deep", "m", 8, "hnsw", ("db", 1))
    vectors = unit_vectors(3_000, 8, seed=9)
    index.add(np.arange(1, 3_001, dtype=np.int64), vectors)
    index.save()
    scores, found = index.search(vectors[:1], 1_500)
    assert len(set(found[0].tolist())) == 1_500 and found[0].min() >= 1
    assert np.all(np.diff(scores[0]) <= 1e-6)
    engine.dispose()


def test_a_walk_leaves_its_connection_clean_even_when_it_fails(tmp_path: Path) -> None:
    """A walk's settings end with its transaction (a pooler may give the next statement another server
    connection), and a walk that fails leaves no open transaction behind for the pool's next user."""
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    backend = PgVectorBackend(engine, IndexPolicy(hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=200))
    kept, dropped = (backend.create(name, "m", 16, "hnsw", ("db", n)) for n, name in ((1, "kept"), (2, "dropped")))
    vectors = unit_vectors(500, 16, seed=8)
    for index in (kept, dropped):
        index.add(np.arange(1, 501, dtype=np.int64), vectors)
        index.save()
    with engine.connect() as conn:
        conn.execute(text(f"DROP TABLE {dropped.table}"))
        conn.commit()
    with pytest.raises(StorageError, match="reindex"):
        dropped.search(vectors[:1], 10)
    _, found = kept.search(vectors[:1], 10)  # the same pooled connection, in a usable state
    assert found[0][0] == 1 and (found[0] >= 0).sum() == 10
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW hnsw.ef_search").scalar_one() == "40"  # pgvector's default
    engine.dispose()


def test_halfvec_collections_store_half_the_bytes_and_find_the_same_neighbours(tmp_path: Path) -> None:
    engine, _ = open_database(pgvector_url_or_skip(str(tmp_path)))
    vectors = unit_vectors(500, 64, seed=4)
    ids = np.arange(500, dtype=np.int64)
    tables = {}
    for element, owner in (("vector", ("db", 1)), ("halfvec", ("db", 2))):
        index = PgVectorBackend(engine, IndexPolicy(), element).create(element, "m", 64, "flat", owner)
        index.add(ids, vectors)
        tables[element] = index
    query = unit_vectors(1, 64, seed=5)[0]
    full_scores, full_ids = tables["vector"].search(query[None, :], 10)
    half_scores, half_ids = tables["halfvec"].search(query[None, :], 10)
    assert len(set(full_ids[0].tolist()) & set(half_ids[0].tolist())) >= 9
    assert np.allclose(full_scores, half_scores, atol=2e-3)
    with engine.connect() as conn:
        size = {e: conn.exec_driver_sql(f"SELECT pg_column_size(embedding) FROM {t.table} LIMIT 1").scalar()
                for e, t in tables.items()}  # fmt: skip
    assert size["halfvec"] < 0.6 * size["vector"]
    engine.dispose()


def test_pgvector_on_sqlite_or_without_the_extension_is_a_one_line_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a", vector_backend="pgvector", api_key=None)
    with pytest.raises(ConfigError, match="needs a PostgreSQL database"):
        Store(settings)
    plain = postgres_url_or_skip(str(tmp_path / "plain"))  # the system PostgreSQL 15 has no pgvector
    engine, _ = open_database(plain)
    with engine.connect() as conn:
        has_vector = conn.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").scalar()
    engine.dispose()
    if has_vector:
        pytest.skip("this PostgreSQL has pgvector available: the missing-extension message cannot be shown")
    settings = Settings(data_dir=tmp_path / "b", vector_backend="pgvector", database_url=plain, api_key=None)
    with pytest.raises(ConfigError, match="has no `vector` extension") as refused:
        Store(settings)
    assert "\n" not in str(refused.value)


def _serve(settings: Settings, fake: FakeOpenAI, data_dir: Path, port: int) -> subprocess.Popen[str]:
    return start_server(cli_env(settings, fake, SEARCHSVC_DATA_DIR=str(data_dir)), port)


def _wait_for_top(api: str, query: dict[str, object], key: str, within: float) -> None:
    """Search through ``api`` until document ``key`` is the top hit, failing after ``within`` seconds."""
    started = time.monotonic()
    while True:
        hits = httpx.post(f"{api}/search", json=query, timeout=30).json()["results"]
        if hits and hits[0]["document_key"] == key:
            return
        assert time.monotonic() - started < within, f"{key!r} was not the top hit within {within} s"
        time.sleep(0.05)


def test_two_servers_on_separate_machines_share_one_database(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """Separate data folders (no shared files): an upsert through one is found through the other within 1 s."""
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    if settings.vector_backend != "pgvector":
        settings = settings.model_copy(update={"vector_backend": "pgvector",
                                               "database_url": pgvector_url_or_skip(str(tmp_path))})  # fmt: skip
    ports = free_port(), free_port()
    servers = [_serve(settings, fake_openai, tmp_path / f"machine-{i}", port) for i, port in enumerate(ports)]
    one, two = (f"http://127.0.0.1:{port}/v1" for port in ports)
    try:
        first = {"documents": [{"id": "a", "text": "Aardvarks dig burrows at night."}]}
        assert httpx.post(f"{one}/collections/docs/documents", json=first, timeout=30).status_code == 200
        query = {"query": "quolls hunting at dusk", "k": 1, "collection": "docs"}
        assert httpx.post(f"{two}/search", json=query, timeout=30).status_code == 200  # warm: collection known
        second = {"documents": [{"id": "q", "text": "Quolls are marsupials hunting at dusk."}]}
        assert httpx.post(f"{one}/collections/docs/documents", json=second, timeout=30).status_code == 200
        _wait_for_top(two, query, "q", within=1.0)  # the other server sees the upsert
        assert not list((tmp_path / "machine-1").rglob("*.faiss"))  # no index files anywhere
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


def test_a_streaming_standby_serves_searches_and_refuses_writes(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    """Read replicas: a standby made with `pg_basebackup -R` answers the same searches as the primary."""
    primary = make_settings(tmp_path, vector_backend="pgvector", database_url=pgvector_url_or_skip(str(tmp_path)))
    run_ingest(primary, SAMPLE_DATA / "markdown", embedder=fake_embedder)
    expected = _top(primary, fake_embedder)
    with PGVECTOR.standby() as standby_admin:
        database = make_url(primary.database_url or "").database
        replica = primary.model_copy(update={"database_url": standby_admin.rsplit("/", 1)[0] + f"/{database}"})
        deadline = time.monotonic() + 30
        while True:  # the base backup holds the data already; wait only for the server to accept reads
            try:
                assert _top(replica, fake_embedder) == expected
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        store = Store(replica, create=False)
        try:
            with pytest.raises(ReadOnlyDatabaseError, match="read-only standby"):
                store.delete_document("docs", store_key(store))
        finally:
            store.close()


def _top(settings: Settings, embedder: FakeEmbedder) -> list[int]:
    store = Store(settings, create=False)
    try:
        return [hit.chunk_id for hit in search(store, embedder, "docs", "redis persistence", k=5).hits]
    finally:
        store.close()


def store_key(store: Store) -> str:
    with store.session() as session:
        return session.scalars(select(Document.key)).first() or ""


def test_a_server_on_a_standby_answers_searches_and_sends_writes_to_the_primary(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """Read replicas with the server itself: `searchsvc serve` on a streaming standby searches what the
    primary wrote (and what it writes later), and a write through it is a 503 that names the primary."""
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, vector_backend="pgvector",
                               database_url=pgvector_url_or_skip(str(tmp_path)))  # fmt: skip
    ports = free_port(), free_port()
    primary = _serve(settings, fake_openai, tmp_path / "primary", ports[0])
    one, two = (f"http://127.0.0.1:{port}/v1" for port in ports)
    servers = [primary]
    try:
        first = {"documents": [{"id": "a", "text": "Aardvarks dig burrows at night."}]}
        assert httpx.post(f"{one}/collections/docs/documents", json=first, timeout=30).status_code == 200
        with PGVECTOR.standby() as standby_admin:
            database = make_url(settings.database_url or "").database
            replica = settings.model_copy(update={"database_url": standby_admin.rsplit("/", 1)[0] + f"/{database}"})
            servers.append(_serve(replica, fake_openai, tmp_path / "replica", ports[1]))
            query = {"query": "quolls hunting at dusk", "k": 1, "collection": "docs"}
            assert httpx.post(f"{two}/search", json=query, timeout=30).json()["results"][0]["document_key"] == "a"
            second = {"documents": [{"id": "q", "text": "Quolls are marsupials hunting at dusk."}]}
            refused = httpx.post(f"{two}/collections/docs/documents", json=second, timeout=30)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "read_only_database"
            assert "primary" in refused.json()["error"]["message"]
            assert httpx.post(f"{one}/collections/docs/documents", json=second, timeout=30).status_code == 200
            _wait_for_top(two, query, "q", within=5.0)  # the standby's server sees the primary's write
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
