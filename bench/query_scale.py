"""Query latency and throughput over HTTP at 10k, 100k and 1M chunks: exact (flat) versus HNSW.

    python bench/query_scale.py --scifact-dir DIR [--sizes 10000,100000,1000000] [--clients 1,16]
        [--seconds 20] [--work-dir /tmp/query-scale]

DIR holds SciFact ingested with the local model (`searchsvc --data-dir DIR ingest
../shared/eval/scifact/corpus.jsonl -c scifact`, 9,988 chunks): the smallest level is that real
collection (copied). Larger levels are synthetic, generated here from it: chunk i gets the vector
normalise(0.6 a + 0.4 b + noise) of two random SciFact chunks a, b and the text of a's first 48
words plus b's first 24, so both the vector and the keyword side have realistic neighbourhoods and
postings. Queries are the real SciFact queries, embedded by the server on every request.

For every level the collection is indexed as flat (exact: the baseline) and as HNSW (`searchsvc
reindex`, timed), a `searchsvc serve` is started on it, and for 1 and N concurrent clients, in
vector and hybrid mode, clients send POST /v1/search (k=10) for the given seconds. Reported: p50/p99
latency, requests/s, recall@10 of HNSW against flat (same queries over HTTP, ids compared), the
server's resident memory, and index and SQL bytes per chunk. Clients run in this process, on the
same 2 cores as the server (their cost is part of what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.http_latency import load_queries  # noqa: E402
from bench.serving import rss_mib, running_server  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers.local import MODEL_NAME  # noqa: E402
from searchsvc.storage.schema import Chunk, Collection, Document, Embedding  # noqa: E402
from searchsvc.store import Store  # noqa: E402

COLLECTION = "scifact"
RECALL_QUERIES = 200
INSERT_BATCH = 20_000


def read_base(scifact_dir: Path) -> tuple[list[str], np.ndarray]:
    """Texts and vectors of the real SciFact chunks."""
    with sqlite3.connect(scifact_dir / "searchsvc.db") as db:
        rows = db.execute(
            "SELECT c.text, e.vector FROM chunks c JOIN collections k ON k.id = c.collection_id "
            "JOIN embeddings e ON e.text_hash = c.embed_hash AND e.model = k.embedding_model WHERE k.name = ?",
            (COLLECTION,),
        ).fetchall()
    if not rows:
        raise SystemExit(f"no {COLLECTION!r} collection in {scifact_dir}: ingest SciFact first (see --help)")
    return [r[0] for r in rows], np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def synthesize(data_dir: Path, size: int, texts: list[str], vectors: np.ndarray, seed: int = 7) -> None:
    """A collection of ``size`` synthetic chunks (10 per document) written straight into SQL."""
    store = Store(Settings(data_dir=data_dir))
    rng = np.random.default_rng(seed)
    words = [t.split() for t in texts]
    try:
        with store.session() as session:
            collection = Collection(
                name=COLLECTION, provider="local", embedding_model=MODEL_NAME, dimension=vectors.shape[1],
                index_type="flat", chunk_tokens=256, chunk_overlap=32,
            )  # fmt: skip
            session.add(collection)
            session.commit()
            for start in range(0, size, INSERT_BATCH):
                span = range(start, min(size, start + INSERT_BATCH))
                _insert_batch(session, collection.id, span, words, vectors, rng)
                session.commit()
                print(f"  synthesized {min(size, start + INSERT_BATCH):,} / {size:,} chunks", file=sys.stderr)
    finally:
        store.close()


def _insert_batch(session, collection_id: int, span: range, words, vectors: np.ndarray, rng) -> None:  # type: ignore[no-untyped-def]
    a, b = rng.integers(0, len(words), len(span)), rng.integers(0, len(words), len(span))
    noise = rng.standard_normal((len(span), vectors.shape[1]), dtype=np.float32) * np.float32(0.3 / 20)
    mixed = 0.6 * vectors[a] + 0.4 * vectors[b] + noise
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    docs = [
        {"id": i // 10 + 1, "collection_id": collection_id, "key": f"syn-{i // 10}", "source": "synthetic",
         "path": None, "title": f"synthetic document {i // 10}", "content_hash": f"syn-{i // 10}",
         "doc_metadata": {}, "chunk_count": 10, "token_count": 1000}
        for i in span if i % 10 == 0
    ]  # fmt: skip
    chunks, embeddings = [], []
    for row, i in enumerate(span):
        text = " ".join(words[a[row]][:48] + words[b[row]][:24])
        chunks.append(
            {"id": i + 1, "document_id": i // 10 + 1, "collection_id": collection_id, "ordinal": i % 10,
             "text": text, "embed_hash": f"syn-{i}", "token_count": 100, "start_char": 0, "end_char": len(text),
             "line_start": None, "line_end": None, "page": None, "heading_path": [], "chunk_metadata": {}}
        )  # fmt: skip
        vector = mixed[row].tobytes()
        embeddings.append(
            {"model": MODEL_NAME, "text_hash": f"syn-{i}", "dimension": len(vector) // 4, "vector": vector}
        )
    if docs:
        session.execute(insert(Document), docs)
    session.execute(insert(Chunk), chunks)
    session.execute(insert(Embedding), embeddings)


def index_folder(data_dir: Path) -> Path:
    """Where the collection's index lives (inside the database's own index folder)."""
    store = Store(Settings(data_dir=data_dir))
    try:
        return store.index_folder(COLLECTION)
    finally:
        store.close()


def build_index(data_dir: Path, index_type: str) -> float:
    """Set the collection's index type and rebuild its index with `searchsvc reindex`; seconds taken.

    A built index is kept aside (``index-cache/TYPE``) and restored on later runs while SQL is unchanged,
    so re-running the benchmark does not pay for a million-vector HNSW graph again; its recorded
    build time is reported."""
    with sqlite3.connect(data_dir / "searchsvc.db") as db:
        db.execute("UPDATE collections SET index_type = ? WHERE name = ?", (index_type, COLLECTION))
        chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    live, cache = index_folder(data_dir), data_dir / "index-cache" / index_type
    record = cache / "build.json"
    if record.exists() and json.loads(record.read_text())["chunks"] == chunks:
        shutil.rmtree(live, ignore_errors=True)
        shutil.copytree(cache / COLLECTION, live)
        return float(json.loads(record.read_text())["seconds"])
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "searchsvc", "--data-dir", str(data_dir), "reindex", "-c", COLLECTION, "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - started
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(live, cache / COLLECTION)
    record.write_text(json.dumps({"chunks": chunks, "seconds": seconds}))
    return seconds


async def _client(http: httpx.AsyncClient, queries: list[str], offset: int, mode: str, until: float, out) -> None:  # type: ignore[no-untyped-def]
    n = offset
    while time.perf_counter() < until:
        body = {"query": queries[n % len(queries)], "k": 10, "collection": COLLECTION, "mode": mode}
        started = time.perf_counter()
        response = await http.post("/v1/search", json=body)
        out["latencies"].append(time.perf_counter() - started)
        if response.status_code != 200:
            out["errors"] += 1
        n += 7


async def _load(url: str, queries: list[str], clients: int, mode: str, seconds: float) -> dict[str, float]:
    out: dict = {"latencies": [], "errors": 0}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await _client(http, queries, 0, mode, time.perf_counter() + 1.0, {"latencies": [], "errors": 0})  # warm-up
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(_client(http, queries, i * 101, mode, until, out) for i in range(clients)))
        elapsed = time.perf_counter() - started
    lat = sorted(out["latencies"])
    return {
        "p50": 1000 * statistics.median(lat),
        "p99": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "rps": len(lat) / elapsed,
        "errors": out["errors"],
    }


def ranked_ids(url: str, queries: list[str]) -> list[list[int]]:
    with httpx.Client(base_url=url, timeout=60) as http:
        return [
            [
                hit["chunk_id"]
                for hit in http.post(
                    "/v1/search", json={"query": q, "k": 10, "collection": COLLECTION, "mode": "vector"}
                ).json()["results"]
            ]
            for q in queries
        ]


def recall_at_10(approx: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(approx, exact, strict=True)]))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prepare_level(size: int, args: argparse.Namespace, base: tuple[list[str], np.ndarray]) -> tuple[Path, int]:
    data_dir = args.work_dir / f"chunks-{size}"
    if size <= len(base[0]):
        if not data_dir.exists():
            shutil.copytree(args.scifact_dir, data_dir)
        return data_dir, len(base[0])
    if not data_dir.exists():  # built aside and renamed, so an interrupted run never leaves a partial level
        partial = data_dir.with_name(data_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        synthesize(partial, size, *base)
        partial.rename(data_dir)
    return data_dir, size


def measure_level(size: int, args: argparse.Namespace, base, queries: list[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    data_dir, chunks = prepare_level(size, args, base)
    rows, exact_ids = [], None
    for index_type in ("flat", "hnsw"):
        build_s = build_index(data_dir, index_type)
        with running_server(data_dir) as (url, pid):
            ids = ranked_ids(url, queries[:RECALL_QUERIES])
            exact_ids = ids if index_type == "flat" else exact_ids
            recall = recall_at_10(ids, exact_ids) if exact_ids is not None else float("nan")
            for clients in args.clients:
                for mode in ("vector", "hybrid"):
                    stats = asyncio.run(_load(url, queries, clients, mode, args.seconds))
                    rows.append({"chunks": chunks, "index": index_type, "clients": clients, "mode": mode,
                                 "recall": recall, "build_s": build_s, **stats})  # fmt: skip
                    print(json.dumps(rows[-1]), file=sys.stderr)
            rss = rss_mib(pid)
        index_bytes = folder_bytes(index_folder(data_dir))
        sql_bytes = sum(p.stat().st_size for p in data_dir.glob("searchsvc.db*"))
        for row in rows[-2 * len(args.clients) :]:
            row.update(rss_mib=rss, index_bytes_per_chunk=index_bytes / chunks, sql_bytes_per_chunk=sql_bytes / chunks)
    return rows


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"cores: {os.cpu_count()}  k=10, {args.seconds:.0f} s per cell, SciFact queries embedded by the server")
    print("ratio = p50 against flat (exact) at the same size, clients and mode\n")
    print(
        "| chunks | index | clients | mode | p50 ms | p99 ms | req/s | p50 vs flat | recall@10 vs flat | "
        "errors | build s | server RSS MiB | index B/chunk | SQL B/chunk |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    flat = {(r["chunks"], r["clients"], r["mode"]): r for r in rows if r["index"] == "flat"}
    for r in rows:
        base = flat.get((r["chunks"], r["clients"], r["mode"]))
        ratio = r["p50"] / base["p50"] if base else float("nan")
        recall = "exact" if r["index"] == "flat" else f"{r['recall']:.3f}"
        print(
            f"| {r['chunks']:,} | {r['index']} | {r['clients']} | {r['mode']} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['rps']:.1f} | {ratio:.2f}x | {recall} | {r['errors']} | {r['build_s']:.0f} | {r['rss_mib']:.0f} | "
            f"{r['index_bytes_per_chunk']:.0f} | {r['sql_bytes_per_chunk']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact-dir", type=Path, required=True, help="data dir with the ingested SciFact")
    parser.add_argument("--queries", type=Path, default=REPO.parent / "shared/eval/scifact/queries.jsonl")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated chunk counts")
    parser.add_argument("--clients", default="1,16", help="comma-separated concurrent client counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="per cell (size, index, clients, mode)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/query-scale"), help="kept between runs")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    if not args.queries.exists():
        raise SystemExit(f"{args.queries} not found: pass --queries (the shared SciFact queries)")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    base = read_base(args.scifact_dir)
    queries = load_queries(args.queries, 1000)
    rows = [row for size in map(int, args.sizes.split(",")) for row in measure_level(size, args, base, queries)]
    print_table(rows, args)


if __name__ == "__main__":
    main()
