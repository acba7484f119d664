"""Sweep hybrid fusion parameters on a BEIR train split (never the test split).

    python bench/tune_fusion.py --data-dir DIR --collection scifact --beir ../shared/eval/scifact --split train

Each query's vector and keyword rankings (100 chunks each) are computed once; every parameter
setting then re-fuses them and scores nDCG@10 at document level. Prints the grid and the best.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from searchsvc.config import Settings  # noqa: E402
from searchsvc.evaluation import load_beir, score_run  # noqa: E402
from searchsvc.fusion import reciprocal_rank_fusion  # noqa: E402
from searchsvc.providers import EmbedderRegistry  # noqa: E402
from searchsvc.search import search  # noqa: E402
from searchsvc.store import Store  # noqa: E402

DEPTH = 100


def rankings(store: Store, embedder, collection: str, queries: dict[str, str]):  # type: ignore[no-untyped-def]
    """Per query: vector and keyword chunk rankings, and chunk id -> document key."""
    per_query, doc_of = {}, {}
    for qid, text in queries.items():
        sides = []
        for mode in ("vector", "keyword"):
            hits = search(store, embedder, collection, text, DEPTH, mode=mode).hits
            doc_of.update({h.chunk_id: h.document_key for h in hits})
            sides.append([(h.chunk_id, h.score) for h in hits])
        per_query[qid] = sides
    return per_query, doc_of


def documents(fused, doc_of) -> list[str]:  # type: ignore[no-untyped-def]
    return list(dict.fromkeys(doc_of[hit.chunk_id] for hit in fused))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--beir", type=Path, default=REPO.parent / "shared/eval/scifact")
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    if args.split == "test":
        raise SystemExit("tune on train (or dev), never on test")
    dataset = load_beir(args.beir, args.split)
    settings = Settings(data_dir=args.data_dir)
    store, embedders = Store(settings), EmbedderRegistry(settings)
    try:
        embedder = embedders.for_collection(store.get_collection(args.collection))
        per_query, doc_of = rankings(store, embedder, args.collection, dataset.queries)
    finally:
        store.close()
        embedders.close()
    results = []
    print("| rrf_k | vector weight | keyword weight | nDCG@10 | Recall@100 |")
    print("|---|---|---|---|---|")
    for rrf_k in (5, 10, 20, 40, 60, 100):
        for vector_weight in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0):
            run = {
                qid: documents(reciprocal_rank_fusion(v, kw, rrf_k, vector_weight, 1.0), doc_of)
                for qid, (v, kw) in per_query.items()
            }
            scores = score_run(run, dataset.qrels)
            results.append((scores["ndcg@10"], rrf_k, vector_weight, scores["recall@100"]))
            print(f"| {rrf_k} | {vector_weight} | 1.0 | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
    best = max(results)
    print(f"\nbest: rrf_k={best[1]}, vector weight {best[2]}: nDCG@10 {best[0]:.4f}")


if __name__ == "__main__":
    main()
