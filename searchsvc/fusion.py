"""Fusing a vector ranking and a keyword ranking into one (hybrid retrieval).

Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over rankings of w / (k + rank(d)),
rank starting at 1. It needs no score calibration between cosine similarity and bm25, which live
on unrelated scales.

The constants were chosen on the SciFact train split with ``bench/tune_fusion.py`` (rrf_k in
5..100, vector weight 0.5..2, document-level nDCG@10): the surface is flat for rrf_k 5-20 and
equal weights (0.724-0.726); the grid's best (rrf_k 5, vector weight 0.75: 0.7263) beat the chosen
setting (rrf_k 10, equal weights: 0.7259) by less than its noise, so the simpler setting is kept.
The textbook rrf_k=60 scored 0.7188.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RRF_K = 10.0
VECTOR_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0


@dataclass(frozen=True)
class FusedHit:
    chunk_id: int
    score: float
    vector_score: float | None
    keyword_score: float | None


def reciprocal_rank_fusion(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    rrf_k: float = RRF_K,
    vector_weight: float = VECTOR_WEIGHT,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> list[FusedHit]:
    """Both rankings are (chunk id, score) best first; returns the fused ranking, best first."""
    fused: dict[int, float] = {}
    for weight, ranking in ((vector_weight, vector), (keyword_weight, keyword)):
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (rrf_k + rank)
    vector_scores, keyword_scores = dict(vector), dict(keyword)
    ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [FusedHit(cid, score, vector_scores.get(cid), keyword_scores.get(cid)) for cid, score in ordered]
