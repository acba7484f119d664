"""Embedding and chat providers, chosen from settings."""

from __future__ import annotations

import threading

from searchsvc.config import DEFAULT_BASE_URL, Settings
from searchsvc.errors import ConfigError
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.providers.http_client import OpenAICompatibleClient


def make_http_client(settings: Settings) -> OpenAICompatibleClient:
    key = settings.api_key.get_secret_value().strip() if settings.api_key else None
    if not key and settings.base_url.rstrip("/") == DEFAULT_BASE_URL:
        raise ConfigError(
            "no API key for the AI/ML API: set AIMLAPI_API_KEY (or use the local model with SEARCHSVC_PROVIDER=local)"
        )
    return OpenAICompatibleClient(settings.base_url, key, settings.request_timeout, settings.max_retries)


def uses_remote_provider(settings: Settings) -> bool:
    """auto picks the API when a key is configured, the local model otherwise."""
    if settings.provider == "auto":
        return settings.has_api_key
    return settings.provider == "openai"


def make_embedding_provider(settings: Settings) -> EmbeddingProvider:
    """The embedding provider the settings ask for."""
    if uses_remote_provider(settings):
        from searchsvc.providers.openai_compat import OpenAIEmbeddingProvider

        limits = EmbeddingLimits(
            max_inputs_per_request=settings.batch_max_inputs,
            max_tokens_per_input=settings.max_tokens_per_input,
            max_tokens_per_request=settings.batch_max_tokens,
            max_in_flight=settings.max_in_flight,
            tokens_per_minute=settings.tokens_per_minute,
        )
        return OpenAIEmbeddingProvider(make_http_client(settings), settings.embedding_model, limits)
    from searchsvc.providers.local import LocalEmbeddingProvider

    return LocalEmbeddingProvider(settings.local_model_dir)


class EmbedderRegistry:
    """One provider per embedding model, created on first use: collections may use different models."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._default = make_embedding_provider(settings)
        self._by_model: dict[str, EmbeddingProvider] = {self._default.model: self._default}
        self._lock = threading.Lock()

    @property
    def default(self) -> EmbeddingProvider:
        return self._default

    def get(self, model: str | None) -> EmbeddingProvider:
        """The provider for ``model``; remote models share the configured endpoint."""
        if model is None or model in self._by_model:
            return self._by_model.get(model or self._default.model, self._default)
        if self._default.kind != "openai":
            raise ConfigError(
                f"model {model!r} needs an API: only the local model {self._default.model!r} is available "
                "without AIMLAPI_API_KEY"
            )
        from searchsvc.providers.openai_compat import OpenAIEmbeddingProvider

        with self._lock:
            if model not in self._by_model:
                remote = self._default
                assert isinstance(remote, OpenAIEmbeddingProvider)
                self._by_model[model] = OpenAIEmbeddingProvider(remote.client, model, remote.limits)
            return self._by_model[model]

    def close(self) -> None:
        self._default.close()


def make_chat_provider(settings: Settings) -> ChatProvider | None:
    """The chat provider when an API is configured; None means answers are extractive."""
    if not uses_remote_provider(settings):
        return None
    return ChatProvider(make_http_client(settings), settings.chat_model)
