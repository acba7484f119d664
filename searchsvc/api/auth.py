"""Bearer API keys: read-only or read-write, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from searchsvc.errors import SearchsvcError


class AuthError(SearchsvcError):
    http_status = 401
    code = "unauthorized"


class ForbiddenError(SearchsvcError):
    http_status = 403
    code = "forbidden"


def key_scope(keys: dict[str, str], presented: str) -> str | None:
    """The scope of the presented key, or None; every configured key is compared, in constant time."""
    found = None
    for key, scope in keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = scope
    return found


# Parses the header (and documents the scheme in /openapi.json); whether a key is needed is decided below.
_bearer = HTTPBearer(auto_error=False, description="An API key from SEARCHSVC_API_KEYS (read-only or read-write).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authorize(request: Request, credentials: HTTPAuthorizationCredentials | None, write: bool) -> None:
    """Raise unless the request carries a key good enough for a read (or a write)."""
    keys: dict[str, str] = request.app.state.settings.service_keys
    if not keys:
        return
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise AuthError("this route needs an API key: send 'Authorization: Bearer <key>'")
    scope = key_scope(keys, token)
    if scope is None:
        raise AuthError("the API key is not valid")
    if write and scope != "rw":
        raise ForbiddenError("this API key is read-only; use a read-write key for this route")


def require_read(request: Request, credentials: Credentials) -> None:
    authorize(request, credentials, write=False)


def require_write(request: Request, credentials: Credentials) -> None:
    authorize(request, credentials, write=True)


READ = [Depends(require_read)]  # route dependencies: any valid key (when keys are configured)
WRITE = [Depends(require_write)]  # a read-write key
