"""One exception hierarchy: every error says what failed and what to do next.

The CLI turns these into a one-line message and a non-zero exit; the HTTP API maps
them to one JSON error shape using ``http_status`` and ``code`` (and a ``Retry-After``
header when the error knows when to come back). Nothing else should reach a caller:
a plain ``ValueError`` or ``RuntimeError`` ends as an HTTP 500.

    SearchsvcError                      500 internal_error
    ├── ConfigError                     500 config_error            settings missing or contradictory
    │   └── ProviderNotConfiguredError  503 provider_not_configured a collection needs an API not configured
    ├── InvalidInputError               400 invalid_input           asked for what cannot be done as asked
    │   ├── PathNotAllowedError         403 path_not_allowed        a job's folder is outside the allowed roots
    │   ├── UnsupportedFileError        400 unsupported_file        an upload of a type searchsvc cannot read
    │   └── InvalidFileError            400 invalid_file            an upload that is not what its name says
    ├── NotFoundError                   404 not_found               no such collection, document, conversation
    │   └── ModelNotFoundError          404 model_not_found         no such model (GET /v1/models lists them)
    ├── IndexMismatchError              409 index_mismatch          vectors of two models about to be mixed
    ├── CollectionBusyError             409 collection_busy         another process writes the collection
    │   └── MigrationBusyError          409 migration_busy          another process builds its model switch
    ├── MigrationStateError             409 migration_state         a model switch cannot do that in its state
    ├── ServiceBusyError                503 service_busy            the write queue is full or slow: retry later
    │   └── ShuttingDownError           503 shutting_down           the server is stopping
    ├── StorageError                    500 storage_error           the database or an index failed
    │   └── ReadOnlyDatabaseError       503 read_only_database      a write reached a read-only standby
    └── ProviderError                   502 provider_error          an embedding or chat API failed
        ├── ProviderAuthError           502 provider_auth           the API refused the key
        ├── ProviderRefusedError        502 provider_refused        a passed-on request refused (its 4xx kept)
        ├── ProviderResponseError       502 provider_bad_response   an answer we must not store
        └── ProviderUnavailableError    503 provider_unavailable    still failing after every retry
            └── ProviderTimeoutError    504 provider_timeout        one request not answered in time
"""

from __future__ import annotations

from typing import Self


class SearchsvcError(Exception):
    """Base of every error searchsvc raises on purpose."""

    http_status = 500
    code = "internal_error"
    exit_code = 1
    param: str | None = None  # the request field at fault, when one is (OpenAI's error "param")

    def at(self, param: str) -> Self:
        """This error, naming the request field at fault."""
        self.param = param
        return self


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


class PathNotAllowedError(InvalidInputError):
    """A path given over HTTP lies outside the folders the server lets jobs read (SEARCHSVC_INGEST_ROOTS)."""

    http_status = 403
    code = "path_not_allowed"


class UnsupportedFileError(InvalidInputError):
    """An uploaded file of a type searchsvc cannot read (by its name's suffix)."""

    code = "unsupported_file"


class InvalidFileError(InvalidInputError):
    """An uploaded file whose content is not what its name says (empty, binary text, not a PDF, bad JSONL)."""

    code = "invalid_file"


class NotFoundError(SearchsvcError):
    """A collection, document or other named thing does not exist."""

    http_status = 404
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    """A model named in a request is not on offer (``GET /v1/models`` lists those that are)."""

    code = "model_not_found"
    param = "model"


class IndexMismatchError(SearchsvcError):
    """Vectors from one embedding model were about to be mixed with another's."""

    http_status = 409
    code = "index_mismatch"


class CollectionBusyError(SearchsvcError):
    """Another process is writing to the same collection."""

    http_status = 409
    code = "collection_busy"


class MigrationBusyError(CollectionBusyError):
    """Another process (or thread) is building the collection's model switch."""

    code = "migration_busy"


class MigrationStateError(SearchsvcError):
    """A model switch (``collections migrate``) was asked for what its state does not allow: a second switch
    while one is open, a rollback with nothing to roll back, a swap that lost a race."""

    http_status = 409
    code = "migration_state"


class ServiceBusyError(SearchsvcError):
    """The service cannot take this request now; ``retry_after`` seconds is when to try again."""

    http_status = 503
    code = "service_busy"

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDownError(ServiceBusyError):
    """The server is stopping; another replica (or this one, restarted) can take the request."""

    code = "shutting_down"


class StorageError(SearchsvcError):
    """The database or the vector index could not be read or written."""

    http_status = 500
    code = "storage_error"


class ReadOnlyDatabaseError(StorageError):
    """A write reached a database that only reads: a streaming standby (read replica)."""

    http_status = 503
    code = "read_only_database"


class ProviderError(SearchsvcError):
    """An embedding or chat provider failed: the request (``method`` and ``url``), the HTTP ``status`` it
    answered with (None when it never answered) and the ``attempts`` made, when known."""

    http_status = 502
    code = "provider_error"

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        method: str | None = None,
        url: str | None = None,
        attempts: int | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.attempts = attempts
        self.provider_code = provider_code  # the API's own error code, e.g. context_length_exceeded


class ProviderAuthError(ProviderError):
    """The provider rejected (or was never given) an API key."""

    code = "provider_auth"


class ProviderRefusedError(ProviderError):
    """The provider refused a request passed on to it as the caller sent it: its 4xx is the caller's to fix,
    so it is answered with the provider's status."""

    code = "provider_refused"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status)
        self.http_status = status


class ProviderResponseError(ProviderError):
    """The provider answered with something we must not store."""

    code = "provider_bad_response"


class ProviderUnavailableError(ProviderError):
    """The provider kept failing after every retry."""

    http_status = 503
    code = "provider_unavailable"


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer one request in time. It may still be computing it, so the same request is
    not sent again: an embedding batch is split, a chat generation is not repeated."""

    http_status = 504
    code = "provider_timeout"
