"""Per-query latency of vector, keyword and hybrid search at k=10, in-process, on one collection.

    python bench/hybrid_latency.py --data-dir DIR --collection scifact [--queries FILE] [--n 809]

Baseline: vector mode on the same queries in the same run (modes are interleaved query by query,
so machine noise hits all three alike). Query embedding is included in vector and hybrid.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.http_latency import load_queries  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.evaluation import latency_summary  # noqa: E402
from searchsvc.providers import EmbedderRegistry  # noqa: E402
from searchsvc.search import MODES, search  # noqa: E402
from searchsvc.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--queries", type=Path, default=REPO.parent / "shared/eval/scifact/queries.jsonl")
    parser.add_argument("--n", type=int, default=809)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not args.queries.exists():
        raise SystemExit(f"{args.queries} not found: pass --queries (the shared SciFact queries)")
    queries = load_queries(args.queries, args.n)
    settings = Settings(data_dir=args.data_dir)
    store, embedders = Store(settings), EmbedderRegistry(settings)
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        embedder = embedders.for_collection(store.get_collection(args.collection))
        for mode in MODES:
            search(store, embedder, args.collection, queries[0], args.k, mode=mode)  # warm up
        for query in queries:
            for mode in MODES:
                started = time.perf_counter()
                search(store, embedder, args.collection, query, args.k, mode=mode)
                timings[mode].append(time.perf_counter() - started)
        chunks = store.index(store.get_collection(args.collection)).count()
    finally:
        store.close()
        embedders.close()
    base = latency_summary(timings["vector"])
    print(
        f"cores: {os.cpu_count()}  collection {args.collection} ({chunks} chunks), {len(queries)} queries, k={args.k}\n"
    )
    print("| mode | p50 ms | p95 ms | mean ms | mean ratio vs vector |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        row = latency_summary(timings[mode])
        print(
            f"| {mode} | {row['p50_ms']} | {row['p95_ms']} | {row['mean_ms']} "
            f"| {row['mean_ms'] / base['mean_ms']:.2f}x |"
        )


if __name__ == "__main__":
    main()
