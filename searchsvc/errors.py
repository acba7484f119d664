"""One exception hierarchy: every error says what failed and what to do next.

The CLI turns these into a one-line message and a non-zero exit; the HTTP API maps
them to one JSON error shape using ``http_status`` and ``code``.
"""

from __future__ import annotations


class SearchsvcError(Exception):
    """Base of every error searchsvc raises on purpose."""

    http_status = 500
    code = "internal_error"
    exit_code = 1


class ConfigError(SearchsvcError):
    """Settings are missing or contradictory."""

    http_status = 500
    code = "config_error"
    exit_code = 2


class ProviderNotConfiguredError(ConfigError):
    """A collection needs a provider (an API) that the settings do not give."""

    http_status = 503
    code = "provider_not_configured"


class InvalidInputError(SearchsvcError):
    """The caller asked for something that cannot be done as asked."""

    http_status = 400
    code = "invalid_input"
    exit_code = 2


class NotFoundError(SearchsvcError):
    """A collection, document or other named thing does not exist."""

    http_status = 404
    code = "not_found"


class IndexMismatchError(SearchsvcError):
    """Vectors from one embedding model were about to be mixed with another's."""

    http_status = 409
    code = "index_mismatch"


class CollectionBusyError(SearchsvcError):
    """Another process is writing to the same collection."""

    http_status = 409
    code = "collection_busy"


class StorageError(SearchsvcError):
    """The database or the vector index could not be read or written."""

    http_status = 500
    code = "storage_error"


class ProviderError(SearchsvcError):
    """An embedding or chat provider failed; ``status`` is the HTTP status it answered with, if any."""

    http_status = 502
    code = "provider_error"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderAuthError(ProviderError):
    """The provider rejected (or was never given) an API key."""

    code = "provider_auth"


class ProviderResponseError(ProviderError):
    """The provider answered with something we must not store."""

    code = "provider_bad_response"


class ProviderUnavailableError(ProviderError):
    """The provider kept failing after every retry."""

    http_status = 503
    code = "provider_unavailable"
