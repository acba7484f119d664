"""The numpy MiniLM matches sentence-transformers on committed reference vectors."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from searchsvc.errors import ProviderResponseError, ShuttingDownError
from searchsvc.providers.query_batcher import QueryBatcher

FIXTURES = Path(__file__).parent / "fixtures"


def _reference() -> tuple[list[str], np.ndarray]:
    meta = json.loads((FIXTURES / "minilm_reference.json").read_text())
    return meta["texts"], np.load(FIXTURES / "minilm_reference.npy")


def test_batched_vectors_match_sentence_transformers(local_provider) -> None:
    texts, reference = _reference()
    vectors = local_provider.embed_documents(texts)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(zip(texts, cosines.round(6), strict=True))


def test_single_query_vectors_match_sentence_transformers(local_provider) -> None:
    texts, reference = _reference()
    for text, expected in zip(texts, reference, strict=True):
        assert float(local_provider.embed_query(text) @ expected) >= 0.9999, text


def test_inputs_past_128_tokens_are_not_truncated_at_128(local_provider) -> None:
    texts, reference = _reference()
    long_text = texts[-3]  # about 150 tokens
    assert local_provider.tokenizer.count([long_text])[0] > 128
    truncated_at_128 = local_provider.tokenizer._tokenizer.encode(long_text).ids[:126]
    short = local_provider.tokenizer._tokenizer.decode(truncated_at_128)
    assert float(local_provider.embed_query(short) @ reference[-3]) < 0.9999


def test_vectors_are_unit_length_and_384_dimensional(local_provider) -> None:
    vectors = local_provider.embed_documents(["one", "two words", "three words here"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_concurrent_queries_share_forward_passes_and_get_their_own_vectors(local_provider) -> None:
    texts, reference = _reference()
    started = threading.Barrier(len(texts))

    def one(i: int) -> np.ndarray:
        started.wait()
        return local_provider.embed_query(texts[i])

    passes_before = local_provider._queries.passes
    with ThreadPoolExecutor(len(texts)) as pool:
        vectors = list(pool.map(one, range(len(texts))))
    for text, vector, expected in zip(texts, vectors, reference, strict=True):
        assert float(vector @ expected) >= 0.9999, text
    assert local_provider._queries.passes - passes_before < len(texts)  # some queries were batched together


def test_a_failing_batch_fails_its_callers_and_the_batcher_lives_on() -> None:
    calls = []

    def embed_many(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        if "boom" in texts:
            raise ValueError("model exploded")
        return np.ones((len(texts), 3), dtype=np.float32)

    batcher = QueryBatcher(embed_many)
    try:
        with pytest.raises(ValueError, match="exploded"):
            batcher.embed("boom")
        assert batcher.embed("fine").shape == (3,)
    finally:
        batcher.close()
    assert calls == [["boom"], ["fine"]]


def test_the_batcher_refuses_after_close_and_survives_a_bad_batch() -> None:
    extra_rows = [1]  # the model first answers with one row too many
    batcher = QueryBatcher(lambda texts: np.ones((len(texts) + extra_rows[0], 3), dtype=np.float32))
    with pytest.raises(ProviderResponseError, match="vectors came back for 1 queries"):
        batcher.embed("x")
    extra_rows[0] = 0
    assert batcher.embed("y").shape == (3,)  # the thread lived on
    batcher.close()
    with pytest.raises(ShuttingDownError, match="closed"):
        batcher.embed("z")


def test_softmax_rows_far_below_zero_do_not_become_nan() -> None:
    from searchsvc.providers.local import _exp_shifted

    scores = np.full((2, 4, 4), -300.0, dtype=np.float32)
    scores[0, 0, 1] = -299.0
    _exp_shifted(scores)
    assert np.isfinite(scores).all() and (scores.sum(axis=-1) > 0).all()
