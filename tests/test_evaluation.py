"""Metrics match hand-computed values on a tiny qrels set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from searchsvc.evaluation import load_beir, mrr_at_k, ndcg_at_k, recall_at_k, score_run


def test_ndcg_matches_a_hand_computed_value() -> None:
    relevant = {"d1": 1, "d3": 2, "d9": 1}
    ranked = ["d3", "d2", "d1", "d4"]
    dcg = 2 / math.log2(2) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, relevant, 1) == pytest.approx(1.0)
    assert ndcg_at_k([], relevant, 10) == 0.0


def test_recall_and_mrr_match_hand_computed_values() -> None:
    relevant = {"a": 1, "b": 1, "c": 0}
    ranked = ["x", "c", "b", "y"]
    assert recall_at_k(ranked, relevant, 10) == 0.5
    assert recall_at_k(ranked, relevant, 2) == 0.0
    assert mrr_at_k(ranked, relevant, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, relevant, 2) == 0.0


def test_score_run_averages_over_judged_queries_and_counts_missing_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    scores = score_run({"q1": ["a"]}, qrels)
    assert scores == {"ndcg@10": 0.5, "recall@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_beir_folder_loading_accepts_both_qrels_layouts(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "q one"}\n{"_id": "2", "text": "q two"}\n')
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    data = load_beir(tmp_path, "test")
    assert data.queries == {"1": "q one"} and data.qrels == {"1": {"d1": 1}}
