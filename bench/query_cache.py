"""Query embedding cache: hit rates on replays of SciFact's queries, and what a hit costs.

    python bench/query_cache.py [--scifact ../shared/eval/scifact] [--replay 5000] [--zipf 1.1] [--seed 7]

Queries are SciFact's 1,109 (queries.jsonl), asked through the embeddings of the tests' fake
OpenAI-compatible server (every request counted) with searchsvc's cache: an LRU per process, then the
SQL shelf (SQLite here) for API models. Replays:
- "each twice": every query once, then every query again in another order: the second pass is what
  a cache can save.
- "zipf": --replay queries drawn with probability proportional to 1/rank^s (a few popular queries
  and a long tail, as search logs look; s is a guess, real logs differ, which moves these rates).
Each replay runs in process A (its first half) and process B (its second half: a new LRU, the same
database), so the SQL shelf's share shows; the LRU sizes are 0 (off), 256 and the default 1,024.
Requests counts what the API was paid for; a hit on a real API saves a whole request (~100-300 ms
and its tokens); here the fake answers on loopback, so times are printed only as lookup costs:
LRU hit and SQL hit against an embedding request to the loopback fake, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers import EmbedderRegistry  # noqa: E402
from searchsvc.store import Store  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402

MODEL = "fake-embed"


def load_queries(folder: Path) -> list[str]:
    path = folder / "queries.jsonl"
    if not path.exists():
        sys.exit(f"{path} not found: this bench reads SciFact from ../shared/eval/scifact (--scifact DIR)")
    return [json.loads(line)["text"] for line in path.open() if line.strip()]


def replays(queries: list[str], length: int, s: float, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    again = list(queries)
    rng.shuffle(again)
    ranked = list(queries)
    rng.shuffle(ranked)  # popularity unrelated to the file's order
    weights = [1 / (rank**s) for rank in range(1, len(ranked) + 1)]
    return {"each twice": queries + again, f"zipf s={s}": rng.choices(ranked, weights, k=length)}


def run_process(settings: Settings, stream: list[str]) -> dict[str, int]:
    store = Store(settings)
    embedders = EmbedderRegistry(settings, store.query_shelf(settings.query_cache_rows))
    try:
        provider = embedders.for_new_collection(MODEL)
        for query in stream:
            provider.embed_query(query)
        counts = embedders.query_cache_counts()[MODEL]
        return {"memory": counts.memory_hits, "sql": counts.shelf_hits, "embedded": counts.misses}
    finally:
        embedders.close()
        store.close()


def replay(server: FakeOpenAI, stream: list[str], lru: int, shelf_rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), provider="openai", base_url=server.url, api_key=server.api_key,
                            embedding_model=MODEL, query_cache_size=lru, query_cache_rows=shelf_rows)  # fmt: skip
        before = len(server.embedding_requests())
        half = len(stream) // 2
        a, b = run_process(settings, stream[:half]), run_process(settings, stream[half:])
        requests = len(server.embedding_requests()) - before
    hits = sum(x["memory"] + x["sql"] for x in (a, b))
    return {"lru": lru, "sql_shelf": bool(shelf_rows), "queries": len(stream), "distinct": len(set(stream)),
            "requests": requests, "hit_rate": round(hits / len(stream), 3),
            "process_b_memory": b["memory"], "process_b_sql": b["sql"]}  # fmt: skip


def lookup_costs(server: FakeOpenAI, queries: list[str]) -> dict[str, float]:
    """Median microseconds: an LRU hit, a SQL hit (new process), an embedding request to the loopback fake."""
    sample = queries[:200]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), provider="openai", base_url=server.url, api_key=server.api_key,
                            embedding_model=MODEL, query_cache_size=1024)  # fmt: skip
        miss, memory = _timed(settings, sample), _timed(settings, sample, warm=True)
        sql = _timed(settings, sample)  # a new process: its LRU is empty, every vector is in SQL
    return {"lru_hit_us": memory, "sql_hit_us": sql, "loopback_request_us": miss}


def _timed(settings: Settings, sample: list[str], warm: bool = False) -> float:
    store = Store(settings)
    embedders = EmbedderRegistry(settings, store.query_shelf(settings.query_cache_rows))
    try:
        provider = embedders.for_new_collection(MODEL)
        if warm:
            for query in sample:
                provider.embed_query(query)
        times = []
        for query in sample:
            started = time.perf_counter()
            provider.embed_query(query)
            times.append((time.perf_counter() - started) * 1e6)
        return round(statistics.median(times), 1)
    finally:
        embedders.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact", type=Path, default=REPO.parent / "shared" / "eval" / "scifact")
    parser.add_argument("--replay", type=int, default=5000, help="length of the Zipf replay")
    parser.add_argument("--zipf", type=float, default=1.1, help="the Zipf replay's exponent s")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    queries = load_queries(args.scifact)
    with FakeOpenAI(dimension=384) as server:
        for name, stream in replays(queries, args.replay, args.zipf, args.seed).items():
            for lru, shelf_rows in ((0, 0), (0, 100_000), (256, 0), (256, 100_000), (1024, 100_000)):
                print(json.dumps({"replay": name, **replay(server, stream, lru, shelf_rows)}), flush=True)
        print(json.dumps({"lookup_costs": lookup_costs(server, queries)}), flush=True)


if __name__ == "__main__":
    main()
