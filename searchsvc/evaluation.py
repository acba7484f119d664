"""Retrieval evaluation on BEIR-layout folders, with the standard metric definitions.

Metrics follow trec_eval / BEIR: nDCG@k with linear gain (rel / log2(rank + 1)),
ideal DCG from the judged relevant documents; Recall@k = relevant retrieved in the
top k over all relevant; MRR@k = 1 / rank of the first relevant hit within k.
Queries without judgments are not scored.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from searchsvc.errors import InvalidInputError

Qrels = dict[str, dict[str, int]]


def ndcg_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal_gains = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal_gains))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (rank + 1)
    return 0.0


METRICS: dict[str, Callable[[list[str], dict[str, int]], float]] = {
    "ndcg@10": lambda r, q: ndcg_at_k(r, q, 10),
    "recall@10": lambda r, q: recall_at_k(r, q, 10),
    "recall@100": lambda r, q: recall_at_k(r, q, 100),
    "mrr@10": lambda r, q: mrr_at_k(r, q, 10),
}


def score_run(run: dict[str, list[str]], qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the judged queries (a judged query missing from the run scores 0)."""
    judged = [qid for qid, rels in qrels.items() if any(g > 0 for g in rels.values())]
    if not judged:
        raise InvalidInputError("the qrels judge no document relevant; nothing to score")
    return {
        name: round(sum(metric(run.get(qid, []), qrels[qid]) for qid in judged) / len(judged), 4)
        for name, metric in METRICS.items()
    }


@dataclass
class BeirDataset:
    corpus: Path
    queries: dict[str, str]
    qrels: Qrels


def load_beir(folder: Path, split: str) -> BeirDataset:
    """corpus.jsonl, queries.jsonl and qrels_<split>.tsv (or qrels/<split>.tsv) from a BEIR folder."""
    folder = Path(folder)
    corpus = folder / "corpus.jsonl"
    qrels_path = next(
        (p for p in (folder / f"qrels_{split}.tsv", folder / "qrels" / f"{split}.tsv") if p.exists()), None
    )
    if not corpus.exists() or not (folder / "queries.jsonl").exists() or qrels_path is None:
        raise InvalidInputError(
            f"{folder} is not a BEIR folder for split {split!r}: need corpus.jsonl, queries.jsonl and "
            f"qrels_{split}.tsv or qrels/{split}.tsv"
        )
    qrels = _read_qrels(qrels_path)
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if str(record["_id"]) in qrels:
                    queries[str(record["_id"])] = record["text"]
    return BeirDataset(corpus, queries, qrels)


def _read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header or blank line
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50/p95/mean in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {}
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return {"p50_ms": round(pick(0.5), 2), "p95_ms": round(pick(0.95), 2), "mean_ms": round(statistics.fmean(ms), 2)}


def run_queries(
    search_documents: Callable[[str], list[str]], queries: dict[str, str]
) -> tuple[dict[str, list[str]], list[float]]:
    """Run every query through ``search_documents`` (query -> ranked document keys), timing each."""
    import time

    run: dict[str, list[str]] = {}
    latencies: list[float] = []
    for qid, text in queries.items():
        started = time.perf_counter()
        run[qid] = search_documents(text)
        latencies.append(time.perf_counter() - started)
    return run, latencies
