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
