"""A model switch under load: sample_data, ingested with the local model, is switched to a remote model of the
tests' OpenAI-compatible server (`searchsvc collections migrate`) while a real `searchsvc serve` answers
searches from several clients the whole time. Counts every search and every failure, and times them.

    python bench/model_switch.py [--clients 4] [--latency 0.05] [--batch-inputs 64] [--corpus sample_data]

Search latency is printed before, during and after the switch as ratios against the "before" phase of the
same run (the machine is noisy; two cores are shared by the clients, the server, the switch and the fake
API). Queries are numbered, so none comes from the query cache: every search embeds its query. The remote
model is the fake server's bag-of-words hashing (64 dimensions); its latency per request stands in for a
real API's. What it flatters: the fake answers instantly apart from that latency, and the local model's
searches run in the same server whose cores the switch's index build also uses. After the swap every query is
embedded by the fake API, so "after" includes its latency per request (a different model, not a slowdown).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.servers import free_port, start_server  # noqa: E402

MODEL = "fake-embed-64"
CLI = [sys.executable, "-m", "searchsvc"]
QUERY_MARK = " zqz"  # in every query (numbered: none comes from a cache), in no document
QUERIES = ["install python versions", "redis persistence", "systemd unit restart", "compression level", "pdf"]


def _searcher(url: str, stop: threading.Event, seen: list[tuple[float, float, int, str]], client_no: int) -> None:
    with httpx.Client(timeout=60) as client:
        n = 0
        while not stop.is_set():
            query = f"{QUERIES[n % len(QUERIES)]}{QUERY_MARK}{client_no}x{n}"
            body = {"collection": "samples", "query": query, "mode": ("hybrid", "vector")[n % 2], "k": 10}
            began = time.monotonic()
            try:
                answer = client.post(f"{url}/v1/search", json=body)
                seen.append((began, time.monotonic() - began, answer.status_code, answer.text[:200]))
            except httpx.HTTPError as exc:
                seen.append((began, time.monotonic() - began, 0, repr(exc)))
            n += 1


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def _phase(seen: list[tuple[float, float, int, str]], start: float, end: float) -> dict[str, Any]:
    inside = [s for s in seen if start <= s[0] < end]
    latencies = sorted(s[1] * 1000 for s in inside)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None
    p50 = statistics.median(latencies) if latencies else None
    failed = sum(1 for s in inside if s[2] != 200)
    return {"searches": len(inside), "failed": failed, "p50_ms": p50, "p99_ms": p99}


def _searches_around_switch(env: dict[str, str], args: argparse.Namespace) -> tuple[Any, list[Any], list[float]]:
    """Clients search a real server for ``settle`` seconds, through the switch, and ``settle`` seconds more."""
    port = free_port()
    server = start_server(env, port)
    seen: list[tuple[float, float, int, str]] = []
    stop = threading.Event()
    url = f"http://127.0.0.1:{port}"
    clients = [threading.Thread(target=_searcher, args=(url, stop, seen, i)) for i in range(args.clients)]
    marks = [time.monotonic()]
    try:
        for thread in clients:
            thread.start()
        marks = [time.monotonic()]
        time.sleep(args.settle)
        marks.append(time.monotonic())
        switched = _run([*CLI, "collections", "migrate", "samples", "--model", MODEL, "--json"], env)
        marks.append(time.monotonic())
        time.sleep(args.settle)
        marks.append(time.monotonic())
    finally:
        stop.set()
        for thread in clients:
            thread.join()
        server.terminate()
        server.wait(timeout=30)
    assert switched.returncode == 0, switched.stderr
    return json.loads(switched.stdout), seen, marks


def _report(migration: dict[str, Any], seen: list[Any], marks: list[float], fake: FakeOpenAI) -> None:
    t0, t1, t2, t3 = marks
    print(f"switch: {migration['from']['model']} -> {migration['to']['model']} {migration['status']} in "
          f"{t2 - t1:.1f} s: {migration['chunks']} chunks, {migration['texts_embedded']} texts embedded "
          f"({migration['tokens']} tokens, {migration['requests']} requests), "
          f"{migration['texts_cached']} already had vectors")  # fmt: skip
    phases = {"before": _phase(seen, t0, t1), "during": _phase(seen, t1, t2), "after": _phase(seen, t2, t3)}
    base = phases["before"]["p50_ms"] or 1.0
    print(f"{'phase':8} {'searches':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs before':>14}")
    for name, row in phases.items():
        ratio = f"{row['p50_ms'] / base:.2f}x" if row["p50_ms"] else "-"
        p50, p99 = (f"{v:.1f}" if v is not None else "-" for v in (row["p50_ms"], row["p99_ms"]))
        print(f"{name:8} {row['searches']:>9} {row['failed']:>7} {p50:>8} {p99:>8} {ratio:>14}")
    failures = [s for s in seen if s[2] != 200]
    print(f"failed searches: {len(failures)} of {len(seen)}" + (f"; first: {failures[0]}" if failures else ""))
    texts = [t for t in fake.embedded_inputs if QUERY_MARK not in t and t != "dimension probe"]
    sent = sum(fake.embedded_inputs[t] for t in texts)
    print(f"document texts sent to the API: {sent}, distinct: {len(texts)} (each paid once when equal)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake API adds to each request")
    parser.add_argument("--corpus", type=Path, default=REPO / "sample_data")
    parser.add_argument("--batch-inputs", type=int, default=64, help="SEARCHSVC_BATCH_MAX_INPUTS of the switch")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of searches before and after")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (pgvector backend) instead of SQLite")
    args = parser.parse_args()
    with FakeOpenAI(dimension=64) as fake, tempfile.TemporaryDirectory() as tmp:
        fake.latency = args.latency
        env = {**os.environ, "SEARCHSVC_DATA_DIR": tmp, "SEARCHSVC_PROVIDER": "local", "AIMLAPI_API_KEY": "test-key",
               "SEARCHSVC_BASE_URL": fake.url, "SEARCHSVC_BATCH_MAX_INPUTS": str(args.batch_inputs)}  # fmt: skip
        if args.database_url:
            env |= {"SEARCHSVC_DATABASE_URL": args.database_url, "SEARCHSVC_VECTOR_BACKEND": "pgvector"}
        began = time.monotonic()
        ingested = _run([*CLI, "ingest", str(args.corpus), "-c", "samples", "--json"], env)
        assert ingested.returncode == 0, ingested.stderr
        print(f"ingested {args.corpus.name} with the local model in {time.monotonic() - began:.1f} s", flush=True)
        migration, seen, marks = _searches_around_switch(env, args)
        _report(migration, seen, marks, fake)


if __name__ == "__main__":
    main()
