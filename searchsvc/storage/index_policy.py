"""Which index type a collection gets, and the HNSW parameters: the same for every vector backend."""

from __future__ import annotations

from dataclasses import dataclass

INDEX_TYPES = ("flat", "hnsw")  # what an index is: exact, or an approximate graph
INDEX_CHOICES = ("auto", *INDEX_TYPES)  # what a collection asks for; auto picks by size


@dataclass(frozen=True)
class IndexPolicy:
    """How a collection's index type and HNSW parameters are chosen (settings pass their own)."""

    hnsw_min_chunks: int = 20_000  # auto: exact (flat) below this many vectors, HNSW from here on
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128

    def resolve(self, requested: str, count: int, current: str | None = None) -> str:
        """The index type for ``count`` vectors; auto keeps an HNSW index until it shrinks below half the limit."""
        if requested != "auto":
            return requested
        if current == "hnsw" and count >= self.hnsw_min_chunks // 2:
            return "hnsw"
        return "hnsw" if count >= self.hnsw_min_chunks else "flat"


DEFAULT_POLICY = IndexPolicy()

# A filter this selective is scored exactly instead of walking the graph: an HNSW walk with a filter that
# few vectors pass misses some of them (FAISS measured 0.73 recall@10 at 0.5% of 15k vectors,
# bench/pgvector_compare.py), and scoring a few thousand vectors exactly costs less than the walk.
EXACT_FILTER_MAX = 10_000
EXACT_FILTER_SELECTIVITY = 0.01


def exact_for_filter(allowed: int, total: float) -> bool:
    """Whether a filter allowing ``allowed`` of about ``total`` vectors is better scored exactly."""
    return allowed <= EXACT_FILTER_MAX or (total > 0 and allowed < EXACT_FILTER_SELECTIVITY * total)


# A filtered graph walk meets allowed vectors at the filter's selectivity: at 5% a walk of breadth 128
# finds about 6 of them, and recall@10 fell to 0.42 (FAISS) and 0.59 (pgvector) at 1M vectors
# (bench/pgvector_compare.py). The breadth is widened by 1/selectivity, up to pgvector's maximum.
FILTERED_EF_MAX = 1000


def filtered_ef_search(ef_search: int, allowed: int, total: float) -> int:
    """The graph walk's breadth for a filter allowing ``allowed`` of about ``total`` vectors."""
    if allowed <= 0 or total <= allowed:
        return ef_search
    return int(min(max(ef_search, ef_search * total / allowed), max(ef_search, FILTERED_EF_MAX)))
