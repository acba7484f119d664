"""Which models are on offer: the local embedding model, and whatever the configured API lists.

The AI/ML API's own docs show ``GET /models`` three ways over time: OpenAI's ``{"object": "list",
"data": [...]}``, a bare list of model objects, and an object keyed by model id (read with
``Object.keys``). All three are accepted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from searchsvc.errors import ConfigError, ProviderError, ProviderResponseError
from searchsvc.providers.http_client import OpenAICompatibleClient

LIST_DEADLINE_SECONDS = 10.0


@dataclass(frozen=True)
class ModelInfo:
    id: str
    provider: str  # "local" or "api"
    type: str | None = None  # as the API calls it: "embedding", "chat-completion", "openai/chat-completions"...
    owned_by: str | None = None
    dimension: int | None = None

    def as_openai(self) -> dict[str, Any]:
        """The OpenAI ``model`` object, with our fields beside its own."""
        return {"id": self.id, "object": "model", "created": 0, "owned_by": self.owned_by or self.provider,
                **{k: v for k, v in asdict(self).items() if k not in ("id", "owned_by")}}  # fmt: skip


def parse_model_list(body: Any) -> list[ModelInfo]:
    """Models from any of the documented ``/models`` shapes; ProviderResponseError for anything else."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        entries: list[tuple[str | None, Any]] = [(None, item) for item in body["data"]]
    elif isinstance(body, list):
        entries = [(None, item) for item in body]
    elif isinstance(body, dict) and body and all(isinstance(key, str) for key in body):
        entries = list(body.items())
    else:
        raise ProviderResponseError(f"the API's /models answer has no list of models: {str(body)[:200]!r}")
    models = []
    for key, item in entries:
        details = item if isinstance(item, dict) else {}
        model_id = key or details.get("id") or (item if isinstance(item, str) else None)
        if not isinstance(model_id, str) or not model_id:
            continue
        kind = details.get("type") if isinstance(details.get("type"), str) else None
        owner = details.get("owned_by") or (item if key and isinstance(item, str) else None)
        models.append(ModelInfo(model_id, "api", kind, owner if isinstance(owner, str) else None))
    return models


def local_models(model_dir: Path | None) -> list[ModelInfo]:
    """The local embedding model, when its files are installed."""
    from searchsvc.providers.local import find_model_dir
    from searchsvc.providers.local_config import read_model_config

    try:
        config = read_model_config(find_model_dir(model_dir))
    except ConfigError:
        return []
    return [ModelInfo(config.name, "local", "embedding", "sentence-transformers", config.hidden)]


def api_models(client: OpenAICompatibleClient) -> list[ModelInfo]:
    """What the API lists (``GET /models``); ProviderError when it cannot say."""
    return parse_model_list(client.get_json("/models", deadline=LIST_DEADLINE_SECONDS))


class ModelCatalog:
    """Local and API models for the HTTP service. The API's list (or why it could not be read) is cached
    for ``ttl`` seconds and fetched by one caller at a time; others get the last answer, never a queue."""

    def __init__(self, model_dir: Path | None, client: OpenAICompatibleClient | None, ttl: float = 60.0) -> None:
        self.local = local_models(model_dir)
        self.client = client
        self.ttl = ttl
        self._cached: tuple[float, list[ModelInfo], str | None] | None = None  # (when, models, problem)
        self._refreshing = threading.Lock()

    def models(self) -> tuple[list[ModelInfo], str | None]:
        """(models, problem): the API's part is left out, with the reason, when it cannot be listed."""
        if self.client is None:
            return self.local, None
        cached = self._cached
        if (cached is None or time.monotonic() - cached[0] > self.ttl) and self._refreshing.acquire(blocking=False):
            try:
                self._cached = cached = self._fetch(self.client)
            finally:
                self._refreshing.release()
        if cached is None:
            return self.local, "the API's model list is being fetched; ask again in a moment"
        return self.local + cached[1], cached[2]

    @staticmethod
    def _fetch(client: OpenAICompatibleClient) -> tuple[float, list[ModelInfo], str | None]:
        try:
            return time.monotonic(), api_models(client), None
        except ProviderError as exc:
            return time.monotonic(), [], str(exc)
