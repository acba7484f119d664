"""The vector-store seam: what the rest of searchsvc asks of a collection's vector index.

SQL is the truth; a vector index is derived from it and rebuilt from it. A backend (FAISS files today;
a database table tomorrow) implements ``VectorIndex`` for one collection's index and ``IndexBackend``
to create, load and drop them. ``tests/test_vector_contract.py`` holds the contract every backend must
pass, parametrised by backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from searchsvc.errors import IndexMismatchError


@dataclass
class IndexManifest:
    """What a saved index is: enough to check it against SQL without loading it."""

    model: str
    dimension: int
    index_type: str
    generation: int
    count: int
    database: str | None = None  # namespace of the database it was built from (None: written before 0.2)
    collection_id: int | None = None  # the collection's row id: a re-created collection is another one

    def belongs_to(self, database: str, collection_id: int) -> bool:
        return self.database == database and self.collection_id == collection_id


class VectorIndex(ABC):
    """One collection's vectors under int64 ids (the chunk ids), searched by inner product.

    Writes (add, remove, convert) and searches may run from different threads: a search never sees a
    half-applied change. ``save`` publishes the current state as a new generation for other processes.
    """

    manifest: IndexManifest
    dimension: int

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under the given int64 ids (ids must not be present)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Forget these ids; absent ids are ignored."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner-product scores and ids per query, best first; missing slots have id -1.

        With ``allowed_ids``, only those ids are candidates, and k results come back whenever k of them
        are present (an approximate index must fall back to exact search when its walk finds fewer)."""

    @abstractmethod
    def cosines(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Inner products of ``query`` with the stored vectors of these ids (absent ids are left out)."""

    @abstractmethod
    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these present ids, in order."""

    @abstractmethod
    def count(self) -> int:
        """Number of live vectors."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All live ids, sorted."""

    @abstractmethod
    def convert(self, index_type: str) -> None:
        """Become an index of another type (see ``index_policy``), keeping every vector."""

    @abstractmethod
    def save(self, before_publish: Callable[[], None] | None = None) -> None:
        """Publish the current state atomically as a new generation; ``before_publish`` runs just before
        the new generation becomes visible (crash tests use it)."""


def checked_batch(ids: np.ndarray, vectors: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids and float32 vectors, contiguous; IndexMismatchError unless one vector of ``dimension`` per id."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape != (len(ids), dimension):
        raise IndexMismatchError(f"vectors of shape {vectors.shape} cannot join an index of dimension {dimension}")
    return ids, vectors


GENERATION_MARK = "@"  # never in a collection name: "docs@2" cannot be another collection's index


def index_name(collection: str, generation: int = 0) -> str:
    """The name a collection's index goes by: its own name for the vectors it was created with, and
    ``NAME@G`` for generation G, built by a model switch (``collections migrate``) beside the one in use."""
    return collection if generation == 0 else f"{collection}{GENERATION_MARK}{int(generation)}"


def index_collection(name: str) -> str:
    """The collection an index name belongs to."""
    return name.partition(GENERATION_MARK)[0]


def index_generation(name: str) -> int:
    """The generation an index name stands for (0 for a collection's first)."""
    _, mark, generation = name.partition(GENERATION_MARK)
    return int(generation) if mark else 0


class IndexBackend(ABC):
    """Creates, loads and drops the indexes of one database's collections, by collection name."""

    @abstractmethod
    def create(self, name: str, model: str, dimension: int, index_type: str, owner: tuple[str, int]) -> VectorIndex:
        """A new empty index (not yet published); ``owner`` is (database namespace, collection id)."""

    @abstractmethod
    def load(self, name: str) -> VectorIndex | None:
        """The published index of collection ``name``, or None when none was ever published."""

    @abstractmethod
    def published(self, name: str) -> IndexManifest | None:
        """The manifest of the published index, without loading it (cheap: servers poll it)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Forget the collection's index entirely."""

    @abstractmethod
    def describe(self, name: str) -> str:
        """Where the collection's index lives, for messages."""
