"""The contract every vector backend must pass, written once and parametrised by backend.

A new backend (pgvector) adds itself to BACKENDS and runs these tests unchanged. Only the interface
of ``searchsvc.storage.vector_store`` is used here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searchsvc.errors import IndexMismatchError, StorageError
from searchsvc.storage.faiss_index import FaissBackend
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.vector_store import IndexBackend

pytestmark = pytest.mark.vector_contract

DIMENSION = 32
OWNER = ("test-database", 1)
Factory = Callable[[Path], IndexBackend]
BACKENDS: dict[str, tuple[Factory, str]] = {
    "faiss-flat": (lambda root: FaissBackend(root, IndexPolicy()), "flat"),
    "faiss-hnsw": (lambda root: FaissBackend(root, IndexPolicy()), "hnsw"),
}


def unit_vectors(count: int, seed: int = 7) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=list(BACKENDS))
def made(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(backend, a new index of the parametrised type holding 200 vectors under ids 1000..1199, vectors)."""
    factory, index_type = BACKENDS[request.param]
    backend = factory(tmp_path)
    index = backend.create("docs", "model-x", DIMENSION, index_type, OWNER)
    vectors = unit_vectors(200)
    index.add(np.arange(1000, 1200, dtype=np.int64), vectors)
    return backend, index, vectors


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ query
    order = np.argsort(-scores)[:k]
    return ids[order], scores[order]


def test_search_returns_the_exact_ids_and_scores_at_small_sizes(made) -> None:
    _, index, vectors = made
    ids = np.arange(1000, 1200)
    for query in unit_vectors(10, seed=3):
        scores, found = index.search(query[None, :], 10)
        want_ids, want_scores = exact_top(vectors, ids, query, 10)
        assert found[0].tolist() == want_ids.tolist()
        assert np.allclose(scores[0], want_scores, atol=1e-5)


def test_a_stored_vector_finds_itself_first(made) -> None:
    _, index, vectors = made
    scores, found = index.search(vectors[17][None, :], 1)
    assert found[0][0] == 1017 and abs(scores[0][0] - 1.0) < 1e-5


def test_removals_are_visible_at_once(made) -> None:
    _, index, vectors = made
    index.remove(np.array([1017, 1018, 99999]))  # an absent id is ignored
    assert index.count() == 198 and 1017 not in index.ids().tolist()
    _, found = index.search(vectors[17][None, :], 5)
    assert 1017 not in found[0].tolist()
    assert index.cosines(vectors[0], [1017, 1000]).keys() == {1000}


def test_a_filter_returns_k_results_whenever_k_are_allowed(made) -> None:
    _, index, vectors = made
    allowed = np.array([1003, 1050, 1101, 1150, 1199], dtype=np.int64)
    for query in unit_vectors(5, seed=11):
        _scores, found = index.search(query[None, :], 5, allowed)
        assert sorted(found[0].tolist()) == allowed.tolist()  # all five, however the graph is walked
        want_ids, _ = exact_top(vectors[allowed - 1000], allowed, query, 5)
        assert found[0].tolist() == want_ids.tolist()


def test_more_than_there_is_pads_with_minus_one(made) -> None:
    _, index, vectors = made
    _scores, found = index.search(vectors[0][None, :], 3, np.array([1000, 1001], dtype=np.int64))
    assert found[0].tolist()[:2] in ([1000, 1001], [1001, 1000]) and found[0][2] == -1


def test_cosines_are_the_inner_products_of_stored_vectors(made) -> None:
    _, index, vectors = made
    query = unit_vectors(1, seed=5)[0]
    got = index.cosines(query, [1000, 1100, 5])
    assert set(got) == {1000, 1100}
    assert abs(got[1100] - float(vectors[100] @ query)) < 1e-5
    assert np.allclose(index.vectors_for(np.array([1100])), vectors[100:101], atol=1e-6)


def test_adding_present_ids_or_another_dimension_is_refused(made) -> None:
    _, index, vectors = made
    with pytest.raises(StorageError):
        index.add(np.array([1000], dtype=np.int64), vectors[:1])
    with pytest.raises(IndexMismatchError):
        index.add(np.array([5000], dtype=np.int64), np.ones((1, DIMENSION + 1), dtype=np.float32))
    assert index.count() == 200


def test_converting_the_type_keeps_every_vector(made) -> None:
    _, index, vectors = made
    before = index.search(vectors[:5], 5)[1]
    other = "hnsw" if index.manifest.index_type == "flat" else "flat"
    index.convert(other)
    assert index.manifest.index_type == other and index.count() == 200
    assert np.array_equal(index.search(vectors[:5], 5)[1], before)


def test_publishing_makes_a_new_generation_that_loads_the_same(made) -> None:
    backend, index, vectors = made
    assert backend.load("docs") is None and backend.published("docs") is None
    seen: list[object] = []
    index.save(before_publish=lambda: seen.append(backend.published("docs")))
    assert seen == [None]  # the hook runs before the new generation is visible
    manifest = backend.published("docs")
    assert manifest is not None and manifest.count == 200 and manifest.belongs_to(*OWNER)
    index.remove(np.array([1000]))
    index.save()
    loaded = backend.load("docs")
    assert loaded is not None and loaded.manifest.generation == manifest.generation + 1
    assert np.array_equal(loaded.ids(), index.ids())
    assert np.array_equal(loaded.search(vectors[:3], 4)[1], index.search(vectors[:3], 4)[1])


def test_a_dropped_index_is_gone(made) -> None:
    backend, index, _ = made
    index.save()
    backend.drop("docs")
    assert backend.load("docs") is None and backend.published("docs") is None
