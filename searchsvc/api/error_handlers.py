"""The one JSON error shape, and the request body limit that answers in it.

Every error is ``{"error": {"code", "message", "type", "param", "details"?}}``: searchsvc's own ``code``
and ``message`` plus OpenAI's ``type`` and ``param``, so OpenAI clients (the official SDKs) read our
errors as they read OpenAI's. On the OpenAI-compatible routes a refused request is a 400, as OpenAI
answers; on searchsvc's own routes it stays a 422, as FastAPI clients expect.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from searchsvc.errors import SearchsvcError

log = logging.getLogger("searchsvc.api")

# Routes that follow OpenAI's protocol (and so its status codes) rather than searchsvc's own.
OPENAI_ROUTES = (
    "/v1/files",
    "/v1/vector_stores",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/conversations",
)
ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}

# What to do when a documented limit is reached, by the field's name.
LIMIT_ADVICE = {
    "documents": "at most 1,000 documents per request: send the rest in further requests",
    "query": "queries are limited to 4,096 characters",
    "question": "questions are limited to 4,096 characters",
    "text": "a document's text is limited to 5,000,000 characters: split it, or ingest the file with the CLI",
    "metadata": "at most 64 metadata keys per document",
}


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    if status >= 500:
        return "server_error"
    return ERROR_TYPES.get(status, "invalid_request_error")


def error_body(code: str, message: str, status: int, details: Any = None, param: str | None = None) -> dict[str, Any]:
    """The one JSON error shape every failure uses."""
    error: dict[str, Any] = {"code": code, "message": message, "type": error_type(status), "param": param}
    if details is not None:
        error["details"] = details
    return {"error": error}


def is_openai_route(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in OPENAI_ROUTES)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SearchsvcError)
    async def library_error(_request: Request, exc: SearchsvcError) -> JSONResponse:
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        body = error_body(exc.code, str(exc), exc.http_status, param=exc.param)
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        details = [{"field": ".".join(str(p) for p in e["loc"]), "problem": _problem(e)} for e in errors]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        status = 400 if is_openai_route(request.url.path) else 422
        param = _param(errors[0]["loc"]) if errors else None
        return JSONResponse(error_body("invalid_request", message, status, details, param), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail), exc.status_code), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        message = "an unexpected error occurred; see the server log"
        return JSONResponse(error_body("internal_error", message, 500), status_code=500)


def _param(location: Any) -> str:
    """``body.filters.type`` → ``filters.type``: the field as the caller wrote it (OpenAI's ``param``)."""
    parts = [str(p) for p in location]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def _problem(error: dict[str, Any]) -> str:
    """Pydantic's message, plus the documented limit and what to do when a limit was exceeded."""
    message = str(error["msg"])
    if error.get("type") in ("too_long", "string_too_long"):
        field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
        if field in LIMIT_ADVICE:
            return f"{message} ({LIMIT_ADVICE[field]})"
    return message


UPLOAD_PATH = "/v1/files"  # file uploads may be as large as SEARCHSVC_MAX_FILE_BYTES, not the body limit
MULTIPART_OVERHEAD = 64 * 1024  # room for the multipart boundaries and the other form fields


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` (or the limit of their path in ``by_path``) with 413,
    declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int, by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.by_path = by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, self.message(limit))
            return message

        await self.app(scope, limited, send)

    def message(self, limit: int) -> str:
        if limit != self.max_bytes:
            return (
                f"the upload is over the {limit:,}-byte limit of this route ({limit / 2**20:g} MiB with the form's "
                "other fields, SEARCHSVC_MAX_FILE_BYTES): upload a smaller file or raise that setting"
            )
        return (
            f"the request body is over the {limit:,}-byte limit ({limit / 2**20:g} MiB, "
            "SEARCHSVC_MAX_BODY_BYTES): send fewer or smaller documents per request"
        )

    async def _refuse(self, send: Send, limit: int) -> None:
        response = JSONResponse(error_body("too_large", self.message(limit), 413), status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
