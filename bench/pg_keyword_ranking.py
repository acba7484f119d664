"""Keyword ranking on PostgreSQL: searchsvc's BM25 (postgres_bm25.py) against PostgreSQL's ts_rank, and
SQLite's FTS5 bm25 as the reference, on the same SciFact collection and queries.

    python bench/pg_keyword_ranking.py --postgres-url URL --sqlite-dir DIR [--split train]

Both databases hold ../shared/eval/scifact ingested by `searchsvc eval` (collection beir-scifact):
    SEARCHSVC_DATA_DIR=DIR searchsvc eval ../shared/eval/scifact --split train
    SEARCHSVC_DATABASE_URL=URL searchsvc eval ../shared/eval/scifact --split train
Every ranker gets the same query terms (stopwords dropped) and the same chunk-to-document step: the
best 1,000 chunks, each document at its best chunk. Reported per ranker: nDCG@10, Recall@10/100,
MRR@10 and p50 latency, with the nDCG difference to SQLite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sqlalchemy import func, literal_column, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchsvc.config import Settings  # noqa: E402
from searchsvc.evaluation import latency_summary, load_beir, score_run  # noqa: E402
from searchsvc.storage.keyword_index import keyword_search, query_terms  # noqa: E402
from searchsvc.storage.schema import Chunk, Document  # noqa: E402
from searchsvc.store import Store  # noqa: E402

COLLECTION = "beir-scifact"
DEPTH = 1000


def ts_rank(session, collection_id: int, query: str, k: int) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    """What searchsvc ranked PostgreSQL keyword results with before BM25."""
    tsquery = func.to_tsquery("english", " | ".join(query_terms(query)))
    vector = literal_column("chunks.search_vector")
    rank = func.ts_rank(vector, tsquery)
    stmt = (
        select(Chunk.id, rank)
        .where(vector.op("@@")(tsquery), Chunk.collection_id == collection_id)
        .order_by(rank.desc(), Chunk.id)
        .limit(k)
    )
    return [(int(i), float(s)) for i, s in session.execute(stmt)]


def documents(session, ranked: list[tuple[int, float]]) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [chunk_id for chunk_id, _ in ranked]
    keys = dict(session.execute(select(Chunk.id, Document.key).join(Document).where(Chunk.id.in_(ids))).all())
    return list(dict.fromkeys(keys[i] for i in ids if i in keys))[:100]


def evaluate(settings: Settings, ranker, queries: dict[str, str], qrels) -> dict:  # type: ignore[no-untyped-def]
    store = Store(settings, create=False)
    run, seconds = {}, []
    try:
        collection = store.get_collection(COLLECTION)
        with store.session() as session:
            for qid, text in queries.items():
                started = time.perf_counter()
                run[qid] = documents(session, ranker(session, collection.id, text, DEPTH))
                seconds.append(time.perf_counter() - started)
    finally:
        store.close()
    return {**score_run(run, qrels), **latency_summary(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", required=True)
    parser.add_argument("--sqlite-dir", type=Path, required=True)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    dataset = load_beir(REPO.parent / "shared/eval/scifact", args.split)
    bm25 = lambda s, c, q, k: keyword_search(s, c, q, k)  # noqa: E731
    postgres = Settings(database_url=args.postgres_url, data_dir=Path("/tmp/unused-pg-keyword"))
    sqlite = Settings(data_dir=args.sqlite_dir)
    rows = {
        "sqlite fts5 bm25": evaluate(sqlite, bm25, dataset.queries, dataset.qrels),
        "postgresql bm25 (searchsvc)": evaluate(postgres, bm25, dataset.queries, dataset.qrels),
        "postgresql ts_rank (before)": evaluate(postgres, ts_rank, dataset.queries, dataset.qrels),
    }
    reference = rows["sqlite fts5 bm25"]
    print(f"SciFact {args.split}, {len(dataset.queries)} queries, keyword only, document level")
    print("| ranker | nDCG@10 | vs SQLite | Recall@10 | Recall@100 | MRR@10 | p50 ms | p50 vs SQLite |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in rows.items():
        print(
            f"| {name} | {m['ndcg@10']:.4f} | {m['ndcg@10'] - reference['ndcg@10']:+.4f} | {m['recall@10']:.4f} | "
            f"{m['recall@100']:.4f} | {m['mrr@10']:.4f} | {m['p50_ms']:.1f} | "
            f"{m['p50_ms'] / reference['p50_ms']:.2f}x |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
