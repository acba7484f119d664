"""Load test: 32 concurrent clients against a live `searchsvc serve`, mixed searches and upserts.

    python bench/load_test.py --data-dir DIR [--collection scifact] [--clients 32] [--seconds 120]

DIR must hold an ingested SciFact collection (see bench/README.md); it is copied to a temporary
folder first, so the run never changes it. Every loop is bounded in time and count and talks only
to 127.0.0.1. Afterwards every acknowledged upsert (warm-up and baseline ones included) is fetched,
found by keyword search for its unique marker, and found by vector search for its own text (filtered
to its id, so the check is that its vector is in the served index). Reports throughput, p50/p99
latency per kind, error count, and the server's resident memory after warm-up and at the end. The
baseline, in the same run, is a single client doing the same mix (so the table shows what
concurrency costs per request).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.serving import rss_mib, running_server  # noqa: E402

UPSERT_SHARE = 0.1
WARMUP_SECONDS = 30


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"search": [], "upsert": []})
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)  # document id -> text sent


async def client_loop(http: httpx.AsyncClient, name: str, args, queries, abstracts, tally: Tally, until: float):  # type: ignore[no-untyped-def]
    rng = random.Random(name)
    n = 0
    while time.monotonic() < until and n < 100_000:
        n += 1
        if rng.random() < UPSERT_SHARE:
            doc_id = f"load-{name}-{n}"
            marker = f"zqx{name}n{n}marker"
            body = {"documents": [{"id": doc_id, "text": f"{rng.choice(abstracts)} {marker}", "title": doc_id}]}
            kind, request = "upsert", http.post(f"/v1/collections/{args.collection}/documents", json=body)
        else:
            doc_id = None
            body = {"query": rng.choice(queries), "k": 10, "collection": args.collection}
            kind, request = "search", http.post("/v1/search", json=body)
        started = time.perf_counter()
        try:
            response = await request
            ok = response.status_code == 200
            if not ok:
                tally.errors.append(f"{kind} {response.status_code} {response.text[:120]}")
        except httpx.HTTPError as exc:
            ok = False
            tally.errors.append(f"{kind} {type(exc).__name__}")
        tally.latencies[kind].append(time.perf_counter() - started)
        if ok and doc_id:
            tally.acknowledged[doc_id] = body["documents"][0]["text"]


async def run_clients(base_url: str, clients: int, seconds: float, args, queries, abstracts) -> Tally:  # type: ignore[no-untyped-def]
    tally = Tally()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(
            *(client_loop(http, f"c{i}", args, queries, abstracts, tally, until) for i in range(clients))
        )
    return tally


def verify(base_url: str, collection: str, acknowledged: dict[str, str]) -> dict[str, int]:
    """Acknowledged upserts missing from each place: SQL (fetch by id), the keyword index, the vector index."""
    missing = {"fetch": 0, "keyword": 0, "vector": 0}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for doc_id, text in acknowledged.items():
            _, client, n = doc_id.split("-")
            marker = f"zqx{client}n{n}marker"
            missing["fetch"] += http.get(f"/v1/collections/{collection}/documents/{doc_id}").status_code != 200
            for mode, query, where in (("keyword", marker, None), ("vector", text, {"key": doc_id})):
                body = {"query": query, "k": 1, "collection": collection, "mode": mode, "filter": where}
                hits = http.post("/v1/search", json={k: v for k, v in body.items() if v is not None}).json()
                missing[mode] += not hits["results"] or hits["results"][0]["document_key"] != doc_id
    return missing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--scifact", type=Path, default=REPO.parent / "shared/eval/scifact")
    args = parser.parse_args()
    queries = [json.loads(line)["text"] for line in (args.scifact / "queries.jsonl").open()]
    with (args.scifact / "corpus.jsonl").open() as corpus:
        abstracts = [json.loads(line)["text"][:1500] for line in itertools.islice(corpus, 2000)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(args.data_dir, data)
        with running_server(data, ready_seconds=120) as (base_url, pid):
            baseline = asyncio.run(run_clients(base_url, 1, min(30.0, args.seconds), args, queries, abstracts))
            warmup = asyncio.run(run_clients(base_url, args.clients, WARMUP_SECONDS, args, queries, abstracts))
            rss_start = rss_mib(pid)
            samples: list[float] = []
            sampler = threading.Thread(target=_sample_rss, args=(pid, args.seconds, samples), daemon=True)
            sampler.start()
            started = time.monotonic()
            tally = asyncio.run(run_clients(base_url, args.clients, args.seconds, args, queries, abstracts))
            elapsed = time.monotonic() - started
            rss_end = rss_mib(pid)
            sampler.join(timeout=15)
            acknowledged = {**baseline.acknowledged, **warmup.acknowledged, **tally.acknowledged}
            missing = verify(base_url, args.collection, acknowledged)
    _report(args, baseline, tally, elapsed, rss_start, rss_end, missing, len(acknowledged))
    print("server RSS every 10 s (MiB):", " ".join(f"{m:.0f}" for m in samples))


def _report(args, baseline: Tally, tally: Tally, elapsed: float, rss_start, rss_end, missing, checked: int) -> None:  # type: ignore[no-untyped-def]
    total = sum(len(v) for v in tally.latencies.values())
    print(f"cores: {os.cpu_count()}  {args.clients} clients for {args.seconds:.0f} s, {UPSERT_SHARE:.0%} upserts\n")
    print("| run | kind | requests | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for label, run, seconds in (
        ("1 client (baseline)", baseline, min(30.0, args.seconds)),
        (f"{args.clients} clients", tally, elapsed),
    ):
        for kind, values in run.latencies.items():
            print(
                f"| {label} | {kind} | {len(values)} | {len(values) / seconds:.1f} | "
                f"{percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} |"
            )
    print(
        f"\ntotal {total} requests in {elapsed:.0f} s ({total / elapsed:.1f} req/s); errors: {len(tally.errors)}"
        f" (baseline {len(baseline.errors)}); of {checked} acknowledged upserts (baseline, warm-up and load), "
        f"missing afterwards: {missing['fetch']} by id, {missing['keyword']} by keyword, {missing['vector']} by vector"
    )
    print(f"server RSS after warm-up {rss_start:.0f} MiB, at the end {rss_end:.0f} MiB")
    for error in tally.errors[:5]:
        print("  error:", error)


def _sample_rss(pid: int, seconds: float, samples: list[float]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(10)
        samples.append(rss_mib(pid))


if __name__ == "__main__":
    main()
