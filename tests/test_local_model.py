"""The numpy MiniLM matches sentence-transformers on committed reference vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
