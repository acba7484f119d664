"""Search latency over HTTP: 1,000 sequential POST /v1/search against a live `searchsvc serve`.

    python bench/http_latency.py --data-dir DIR --collection scifact \
        --queries ../shared/eval/scifact/queries.jsonl [--n 1000] [--k 10]

The baseline, measured in the same run, is the same queries through the library in-process
(`searchsvc.search.search`), so the ratio is the cost of HTTP, JSON and the server. Both include
embedding the query with the collection's model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.serving import running_server  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.evaluation import latency_summary  # noqa: E402
from searchsvc.providers import EmbedderRegistry  # noqa: E402
from searchsvc.search import search  # noqa: E402
from searchsvc.store import Store  # noqa: E402


def load_queries(path: Path, n: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return [texts[i % len(texts)] for i in range(n)]


def in_process(settings: Settings, collection: str, queries: list[str], k: int) -> list[float]:
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        embedder = embedders.for_collection(store.get_collection(collection))
        search(store, embedder, collection, queries[0], k)
        latencies = []
        for query in queries:
            started = time.perf_counter()
            search(store, embedder, collection, query, k)
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        store.close()
        embedders.close()


def over_http(data_dir: Path, collection: str, queries: list[str], k: int) -> list[float]:
    with running_server(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        client.post("/v1/search", json={"query": queries[0], "k": k, "collection": collection})
        latencies = []
        for query in queries:
            started = time.perf_counter()
            response = client.post("/v1/search", json={"query": query, "k": k, "collection": collection})
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--queries", type=Path, default=REPO.parent / "shared/eval/scifact/queries.jsonl")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not args.queries.exists():
        raise SystemExit(f"{args.queries} not found: pass --queries (the shared SciFact queries)")
    queries = load_queries(args.queries, args.n)
    settings = Settings(data_dir=args.data_dir)
    base = latency_summary(in_process(settings, args.collection, queries, args.k))
    http = latency_summary(over_http(args.data_dir, args.collection, queries, args.k))
    print(f"cores: {os.cpu_count()}  {args.n} sequential queries, k={args.k}, collection {args.collection}\n")
    print("| path | p50 ms | p95 ms | mean ms | p50 ratio vs in-process |")
    print("|---|---|---|---|---|")
    for name, row in (("in-process library (baseline)", base), ("HTTP POST /v1/search", http)):
        print(
            f"| {name} | {row['p50_ms']} | {row['p95_ms']} | {row['mean_ms']} | {row['p50_ms'] / base['p50_ms']:.2f}x |"
        )


if __name__ == "__main__":
    main()
