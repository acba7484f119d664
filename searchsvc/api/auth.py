"""Bearer API keys: read-only or read-write, compared in constant time, never logged."""

from __future__ import annotations

import hmac

from fastapi import Request

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


def authorize(request: Request, write: bool) -> None:
    """Raise unless the request carries a key good enough for a read (or a write)."""
    keys: dict[str, str] = request.app.state.settings.service_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("this route needs an API key: send 'Authorization: Bearer <key>'")
    scope = key_scope(keys, token.strip())
    if scope is None:
        raise AuthError("the API key is not valid")
    if write and scope != "rw":
        raise ForbiddenError("this API key is read-only; use a read-write key for this route")


def require_read(request: Request) -> None:
    authorize(request, write=False)


def require_write(request: Request) -> None:
    authorize(request, write=True)
