"""The pgvector backend: each collection's vectors in a PostgreSQL table, searched in SQL.

A collection's vectors live in their own table (``searchsvc_vectors_<collection id>``: chunk id, a
``vector(d)`` or ``halfvec(d)`` column), with an HNSW index once the collection's size calls for one
(``index_policy``). The table ``vector_indexes`` (migration 0008) records each collection's table,
type and published generation, the way a FAISS manifest does. There are no files: every server and
worker on any machine sees a change as soon as it commits.

Search uses inner product on unit vectors (``<#>``, the negative inner product). Filtered searches
pick their path by estimated selectivity: few allowed ids are scored exactly (a primary-key lookup
and a sort); many go through the HNSW graph with ``hnsw.iterative_scan``, and fall back to the exact
path when the walk returns fewer than k. Unfiltered searches walk plainly, and on with iterative scan
only if dead rows left the plain walk short of k (``WHEN_SHORT``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from searchsvc.errors import ConfigError, IndexMismatchError, StorageError
from searchsvc.storage.index_policy import DEFAULT_POLICY, IndexPolicy, exact_for_filter, filtered_ef_search
from searchsvc.storage.pg_params import BigintArray, use_binary_arrays
from searchsvc.storage.vector_store import IndexBackend, IndexManifest, VectorIndex, checked_batch, index_generation

MIN_VERSION = (0, 8)  # hnsw.iterative_scan
WHEN_SHORT = {"plain": "iterative", "iterative": "exact"}  # the next path when a walk returns fewer than k
ELEMENT_TYPES = ("vector", "halfvec")
OPS = {"vector": "vector_ip_ops", "halfvec": "halfvec_ip_ops"}
EF_SEARCH_MAX = 1000  # pgvector's limit on hnsw.ef_search
BUILD_MEMORY = "1GB"  # maintenance_work_mem for an HNSW build: the graph should fit, else it is slow


class PgVectorIndex(VectorIndex):
    """One collection's vectors in one table. Every call is its own transaction."""

    def __init__(
        self,
        engine: Engine,
        manifest: IndexManifest,
        table: str,
        element: str,
        policy: IndexPolicy,
        build_memory: str = BUILD_MEMORY,
    ) -> None:
        self.engine = engine
        self.build_memory = build_memory
        self.manifest = manifest
        self.dimension = manifest.dimension
        self.table = table
        self.element = element
        self.policy = policy

    # Writes ---------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = checked_batch(ids, vectors, self.dimension)
        if not len(ids):
            return
        with self._connection() as conn:
            try:
                with conn.begin():  # the COPY runs on the driver's connection, inside this transaction
                    _copy_rows(conn, self.table, self.element, ids, vectors)
            except Exception as exc:  # a present id violates the primary key: nothing of the batch is kept
                if "duplicate key" in str(exc):
                    raise StorageError("refusing to add ids the table already holds; run `searchsvc reindex`") from exc
                raise StorageError(f"cannot add vectors to {self.table}: {exc}") from exc

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        with self._connection() as conn:
            conn.execute(text(f"DELETE FROM {self.table} WHERE chunk_id = ANY(:ids)"), {"ids": ids.tolist()})
            conn.commit()

    def convert(self, index_type: str) -> None:
        """flat: drop the HNSW index (exact scans); hnsw: build it over the rows there are."""
        if index_type == self.manifest.index_type:
            return
        with self._connection() as conn:
            if index_type == "hnsw":
                self._build_hnsw(conn)
            else:
                conn.execute(text(f"DROP INDEX IF EXISTS {self.table}_hnsw"))
            conn.execute(text("UPDATE vector_indexes SET index_type = :t WHERE table_name = :n"),
                         {"t": index_type, "n": self.table})  # fmt: skip
            conn.commit()
        self.manifest = replace(self.manifest, index_type=index_type)

    def _build_hnsw(self, conn: Connection) -> None:
        conn.execute(text("SELECT set_config('maintenance_work_mem', :m, true)"), {"m": self.build_memory})
        conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {self.table}_hnsw ON {self.table} USING hnsw "
                f"(embedding {OPS[self.element]}) WITH (m = {int(self.policy.hnsw_m)}, "
                f"ef_construction = {int(self.policy.hnsw_ef_construction)})"
            )
        )

    def save(self, before_publish: Callable[[], None] | None = None) -> None:
        """Rows are visible once committed; publishing records a generation (other servers reload the
        handle) and, for an HNSW collection filled in bulk, builds its graph once the rows are there."""
        with self._connection() as conn:
            if self.manifest.index_type == "hnsw":
                self._build_hnsw(conn)
            count = conn.execute(text(f"SELECT count(*) FROM {self.table}")).scalar_one()
            if before_publish is not None:
                conn.commit()
                before_publish()
            generation = conn.execute(
                text("UPDATE vector_indexes SET generation = generation + 1, count = :c "
                     "WHERE table_name = :n RETURNING generation"),
                {"c": count, "n": self.table},
            ).scalar_one()  # fmt: skip
            conn.commit()
        self.manifest = replace(self.manifest, generation=generation, count=count)

    # Reads ----------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        if k <= 0:
            return scores, ids
        path = self._path(allowed_ids)
        reachable = min(k, self.manifest.count if allowed_ids is None else len(allowed_ids))
        with self._connection() as conn:
            for row, query in enumerate(queries):
                found = self._nearest(conn, query, k, allowed_ids, path)
                if len(found) < reachable and path in WHEN_SHORT:  # the walk came up short: the next path
                    found = self._nearest(conn, query, k, allowed_ids, WHEN_SHORT[path])
                for column, (chunk_id, score) in enumerate(found):
                    ids[row, column], scores[row, column] = chunk_id, score
        return scores, ids

    def _path(self, allowed_ids: np.ndarray | None) -> str:
        """exact (a scan, or a primary-key lookup and a sort), a plain walk of the graph (unfiltered: iterative
        scan keeps every discarded candidate, which cost an unfiltered search 9-24% at 100k, `m` 32, in
        bench/pgvector_graph_degree.py), or an iterative walk (filtered: the graph post-filters)."""
        if self.manifest.index_type != "hnsw":
            return "exact"
        if allowed_ids is None:
            return "plain"
        # The selectivity estimate uses the count as of this handle's load or last publication: no query.
        return "exact" if exact_for_filter(len(allowed_ids), float(self.manifest.count)) else "iterative"

    def _nearest(
        self, conn: Connection, query: np.ndarray, k: int, allowed_ids: np.ndarray | None, path: str
    ) -> list[tuple[int, float]]:
        distance = f"embedding <#> %(q)s::{self.element}"
        # An ordering the HNSW index cannot serve makes the planner score the rows exactly.
        order = f"({distance}) + 0" if path == "exact" else distance
        if path != "exact":
            ef = max(self.policy.hnsw_ef_search, k)
            if allowed_ids is not None:
                ef = filtered_ef_search(ef, len(allowed_ids), self.manifest.count)
            scan = "off" if path == "plain" else "relaxed_order"
            # SET LOCAL: the settings end with this transaction, so they never reach another query on the
            # connection, and a pooler that lends server connections per transaction runs them with the walk.
            settings = "set_config('hnsw.ef_search', %(ef)s, true), set_config('hnsw.iterative_scan', %(scan)s, true)"
            conn.exec_driver_sql(f"SELECT {settings}", {"ef": str(min(int(ef), EF_SEARCH_MAX)), "scan": scan})
        where = "WHERE chunk_id = ANY(%(ids)s)" if allowed_ids is not None else ""
        sql = f"SELECT chunk_id, ({distance}) AS d FROM {self.table} {where} ORDER BY {order} LIMIT %(k)s"
        params: dict[str, Any] = {"q": vector_literal(query), "k": int(k)}
        if allowed_ids is not None:
            params["ids"] = BigintArray(allowed_ids)
        rows = conn.exec_driver_sql(sql, params).all()
        conn.rollback()  # end the transaction, and with it the settings
        return sorted(((int(i), -float(d)) for i, d in rows), key=lambda r: -r[1])  # relaxed order: sort

    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        if not ids:
            return {}
        sql = f"SELECT chunk_id, (embedding <#> %(q)s::{self.element}) FROM {self.table} WHERE chunk_id = ANY(%(ids)s)"
        with self._connection() as conn:
            rows = conn.exec_driver_sql(sql, {"q": vector_literal(query), "ids": BigintArray(np.asarray(ids))}).all()
        return {int(i): -float(d) for i, d in rows}

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        sql = f"SELECT chunk_id, embedding::vector::text FROM {self.table} WHERE chunk_id = ANY(%(ids)s)"
        with self._connection() as conn:
            rows = dict(conn.exec_driver_sql(sql, {"ids": BigintArray(ids)}).all())
        return np.array([_parse(rows[int(i)]) for i in ids], dtype=np.float32).reshape(len(ids), self.dimension)

    def count(self) -> int:
        with self._connection() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {self.table}")).scalar_one())

    def ids(self) -> np.ndarray:
        with self._connection() as conn:
            rows = conn.execute(text(f"SELECT chunk_id FROM {self.table} ORDER BY chunk_id")).scalars().all()
        return np.asarray(rows, dtype=np.int64)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                use_binary_arrays(conn.connection.driver_connection)
                yield conn
        except (StorageError, IndexMismatchError):
            raise
        except Exception as exc:
            if "does not exist" in str(exc) and self.table in str(exc):
                raise StorageError(f"the vector table {self.table} is gone; run `searchsvc reindex`") from exc
            raise


class PgVectorBackend(IndexBackend):
    """Vector tables of one PostgreSQL database, registered in ``vector_indexes``."""

    def __init__(
        self,
        engine: Engine,
        policy: IndexPolicy = DEFAULT_POLICY,
        element: str = "vector",
        build_memory: str = BUILD_MEMORY,
    ) -> None:
        if element not in ELEMENT_TYPES:
            raise ConfigError(f"unknown pgvector element type {element!r}: choose one of {', '.join(ELEMENT_TYPES)}")
        self.engine = engine
        self.policy = policy
        self.element = element
        self.build_memory = build_memory
        check_pgvector(engine)

    def create(self, name: str, model: str, dimension: int, index_type: str, owner: tuple[str, int]) -> PgVectorIndex:
        database, collection_id = owner
        generation = index_generation(name)  # a model switch's shadow generation gets a table of its own
        table = f"searchsvc_vectors_{int(collection_id)}" + (f"_g{generation}" if generation else "")
        with self.engine.connect() as conn:
            self._drop_tables(conn, name, table)
            conn.execute(text(f"CREATE TABLE {table} (chunk_id bigint PRIMARY KEY, "
                              f"embedding {self.element}({int(dimension)}) NOT NULL)"))  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO vector_indexes (name, table_name, collection_id, database, model, dimension, "
                    "index_type, element_type, generation, count) "
                    "VALUES (:name, :table, :cid, :db, :model, :dim, :type, :element, 0, 0)"
                ),
                {"name": name, "table": table, "cid": collection_id, "db": database, "model": model,
                 "dim": dimension, "type": index_type, "element": self.element},
            )  # fmt: skip
            conn.commit()
        manifest = IndexManifest(model, dimension, index_type, 0, 0, database, collection_id)
        return PgVectorIndex(self.engine, manifest, table, self.element, self.policy, self.build_memory)

    def load(self, name: str) -> PgVectorIndex | None:
        row = self._row(name)
        if row is None:
            return None
        index = PgVectorIndex(
            self.engine, _manifest(row), row["table_name"], row["element_type"], self.policy, self.build_memory
        )
        # Rows are live: the count recorded at the last publication may be behind (a writer killed after
        # adding, before publishing). A loaded handle states what the table holds.
        index.manifest = replace(index.manifest, count=index.count())
        return index

    def published(self, name: str) -> IndexManifest | None:
        row = self._row(name)
        return _manifest(row) if row is not None else None

    def drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            self._drop_tables(conn, name)
            conn.commit()

    def describe(self, name: str) -> str:
        row = self._row(name, published_only=False)
        table = row["table_name"] if row is not None else "(none yet)"
        return f"table {table} of {self.engine.url.render_as_string(hide_password=True)}"

    def _row(self, name: str, published_only: bool = True) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM vector_indexes WHERE name = :n"), {"n": name}).mappings().first()
        if row is None or (published_only and row["generation"] == 0):
            return None
        return dict(row)

    @staticmethod
    def _drop_tables(conn: Connection, name: str, *also: str) -> None:
        old = conn.execute(text("DELETE FROM vector_indexes WHERE name = :n RETURNING table_name"), {"n": name})
        for table in {*old.scalars().all(), *also}:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def check_pgvector(engine: Engine) -> None:
    """A one-line error unless the database is PostgreSQL with the ``vector`` extension 0.8 or newer."""
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            "SEARCHSVC_VECTOR_BACKEND=pgvector needs a PostgreSQL database: set SEARCHSVC_DATABASE_URL="
            "postgresql+psycopg://USER@HOST/DB (with pgvector 0.8+ installed), or use SEARCHSVC_VECTOR_BACKEND=faiss"
        )
    with engine.connect() as conn:
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    if version is None:
        raise ConfigError(
            f"the database at {engine.url.render_as_string(hide_password=True)} has no `vector` extension: install "
            "pgvector 0.8+ on the server and run `CREATE EXTENSION vector;` as a superuser (then `searchsvc db "
            "upgrade`), or use SEARCHSVC_VECTOR_BACKEND=faiss"
        )
    if tuple(int(part) for part in str(version).split(".")[:2]) < MIN_VERSION:
        raise ConfigError(f"pgvector {version} is too old: 0.8 or newer is needed (ALTER EXTENSION vector UPDATE;)")


def _manifest(row: dict[str, Any]) -> IndexManifest:
    return IndexManifest(
        model=row["model"],
        dimension=row["dimension"],
        index_type=row["index_type"],
        generation=row["generation"],
        count=row["count"],
        database=row["database"],
        collection_id=row["collection_id"],
    )


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; float32 values printed exactly (9 significant digits)."""
    return "[" + ",".join(f"{value:.9g}" for value in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def _parse(value: str) -> list[float]:
    return [float(part) for part in value.strip("[]").split(",")] if value != "[]" else []


def _copy_rows(conn: Connection, table: str, element: str, ids: np.ndarray, vectors: np.ndarray) -> None:
    """COPY the rows in pgvector's text form (one round trip for the whole batch)."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} (chunk_id, embedding) FROM STDIN") as copy:
        for chunk_id, vector in zip(ids.tolist(), vectors, strict=True):
            copy.write(f"{chunk_id}\t{vector_literal(vector)}\n")
