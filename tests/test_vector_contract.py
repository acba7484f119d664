"""The contract every vector backend must pass, written once and parametrised by backend.

Each backend adds itself to BACKENDS and runs these tests unchanged. Only the interface of
``searchsvc.storage.vector_store`` is used here. The pgvector ones run on a real PostgreSQL with
pgvector (tests/postgres.py starts one) and carry the ``pgvector`` marker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searchsvc.errors import IndexMismatchError, StorageError
from searchsvc.storage.database import open_database
from searchsvc.storage.faiss_index import FaissBackend
from searchsvc.storage.index_policy import IndexPolicy
from searchsvc.storage.pgvector_index import PgVectorBackend
from searchsvc.storage.vector_store import IndexBackend
from tests.conftest import pgvector_url_or_skip, unit_vectors

pytestmark = pytest.mark.vector_contract

DIMENSION = 32
OWNER = ("test-database", 1)
Factory = Callable[[Path], IndexBackend]


def pgvector_backend(root: Path) -> PgVectorBackend:
    engine, _ = open_database(pgvector_url_or_skip(str(root)))
    return PgVectorBackend(engine, IndexPolicy())


BACKENDS: dict[str, tuple[Factory, str]] = {
    "faiss-flat": (lambda root: FaissBackend(root, IndexPolicy()), "flat"),
    "faiss-hnsw": (lambda root: FaissBackend(root, IndexPolicy()), "hnsw"),
    "pgvector-flat": (pgvector_backend, "flat"),
    "pgvector-hnsw": (pgvector_backend, "hnsw"),
}
MARKS = {name: [pytest.mark.pgvector] for name in BACKENDS if name.startswith("pgvector")}


@pytest.fixture(params=[pytest.param(name, marks=MARKS.get(name, [])) for name in BACKENDS])
def made(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(backend, a new index of the parametrised type holding 200 vectors under ids 1000..1199, vectors)."""
    factory, index_type = BACKENDS[request.param]
    backend = factory(tmp_path)
    index = backend.create("docs", "model-x", DIMENSION, index_type, OWNER)
    vectors = unit_vectors(200, DIMENSION, seed=7)
    index.add(np.arange(1000, 1200, dtype=np.int64), vectors)
    return backend, index, vectors


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ query
    order = np.argsort(-scores)[:k]
    return ids[order], scores[order]


def test_search_returns_the_exact_ids_and_scores_at_small_sizes(made) -> None:
    _, index, vectors = made
    ids = np.arange(1000, 1200)
    for query in unit_vectors(10, DIMENSION, seed=3):
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
    for query in unit_vectors(5, DIMENSION, seed=11):
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
    query = unit_vectors(1, DIMENSION, seed=5)[0]
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


def test_a_selective_filter_gets_the_exact_top_k_from_a_large_graph(made) -> None:
    """A graph walk with a filter few vectors pass misses some of them: such filters are scored exactly."""
    backend, small, _ = made
    index = backend.create("large", "model-x", DIMENSION, small.manifest.index_type, ("test-database", 2))
    vectors = unit_vectors(6000, DIMENSION, seed=21)
    ids = np.arange(1, 6001, dtype=np.int64)
    index.add(ids, vectors)
    index.save()  # a backend may build its graph when publishing
    allowed = np.sort(np.random.default_rng(8).choice(ids, 40, replace=False))
    for query in unit_vectors(20, DIMENSION, seed=22):
        scores, found = index.search(query[None, :], 10, allowed)
        want_ids, want_scores = exact_top(vectors[allowed - 1], allowed, query, 10)
        assert found[0].tolist() == want_ids.tolist()
        assert np.allclose(scores[0], want_scores, atol=1e-5)
