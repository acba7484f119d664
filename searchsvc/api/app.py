"""App factory: ``create_app(settings)`` builds the FastAPI service."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from searchsvc import __version__
from searchsvc.api.deps import Services
from searchsvc.api.docs_pages import install_docs
from searchsvc.api.metrics import Metrics
from searchsvc.api.routes import ask, collections, health, jobs, models, search
from searchsvc.api.write_queue import UpsertQueue
from searchsvc.config import Settings
from searchsvc.errors import SearchsvcError
from searchsvc.jobs.runner import JobRunner
from searchsvc.logs import configure_json_logging
from searchsvc.providers import EmbedderRegistry, make_chat_provider
from searchsvc.storage.faiss_index import set_faiss_threads
from searchsvc.store import Store

log = logging.getLogger("searchsvc.api")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one JSON error shape every failure uses."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app over the store and providers the settings describe."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each request is one query: FAISS gains nothing from OpenMP teams per request thread, and
        # concurrent requests already fill the cores (bench/query_scale.py measures both settings).
        set_faiss_threads(settings.faiss_threads or 1)
        store = Store(settings)
        embedders = EmbedderRegistry(settings)
        chat = make_chat_provider(settings)
        services = Services(settings, store, embedders, chat, upserts=None)  # type: ignore[arg-type]
        services.upserts = UpsertQueue(services.ingest, settings.max_queued_documents)
        app.state.services = services
        app.state.metrics = services.metrics = Metrics(store)
        # Without a broker this server runs jobs itself; with one, Celery workers do.
        runner = JobRunner(store, services.run_job, settings if settings.broker_url is None else _no_runners(settings))
        runner.start()
        log.info(
            "service started",
            extra={
                "fields": {
                    "new_collections": "/".join(embedders.default_spec()),
                    "answers": "generative" if chat else "extractive",
                }
            },
        )
        try:
            yield
        finally:
            runner.close()  # a running job is handed back at its next progress report, resumed by the next runner
            services.upserts.close()
            embedders.close()
            if chat is not None:
                chat.close()
            store.close()

    app = FastAPI(
        title="searchsvc",
        version=__version__,
        lifespan=lifespan,
        description="Semantic search and retrieval-augmented answers with citations.",
        docs_url=None,  # served below from installed assets, not from a CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    _install_error_handlers(app)
    app.middleware("http")(_observe)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for router in (health.router, search.router, collections.router, jobs.router, ask.router, models.router):
        app.include_router(router)
    return app


def _no_runners(settings: Settings) -> Settings:
    return settings.model_copy(update={"job_workers": 0})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SearchsvcError)
    async def library_error(_request: Request, exc: SearchsvcError) -> JSONResponse:
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        return JSONResponse(error_body(exc.code, str(exc)), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "problem": _problem(e)} for e in exc.errors()]
        message = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        return JSONResponse(error_body("invalid_request", message, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("internal_error", "an unexpected error occurred; see the server log"), status_code=500
        )


# What to do when a documented limit is reached, by the field's name.
LIMIT_ADVICE = {
    "documents": "at most 1,000 documents per request: send the rest in further requests",
    "query": "queries are limited to 4,096 characters",
    "question": "questions are limited to 4,096 characters",
    "text": "a document's text is limited to 5,000,000 characters: split it, or ingest the file with the CLI",
    "metadata": "at most 64 metadata keys per document",
}


def _problem(error: dict[str, Any]) -> str:
    """Pydantic's message, plus the documented limit and what to do when a limit was exceeded."""
    message = str(error["msg"])
    if error.get("type") in ("too_long", "string_too_long"):
        field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str)), "")
        if field in LIMIT_ADVICE:
            return f"{message} ({LIMIT_ADVICE[field]})"
    return message


async def _observe(request: Request, call_next: Any) -> Any:
    """Per-route metrics and one structured log line per request (never headers, so never keys)."""
    started = time.perf_counter()
    response = await call_next(request)
    elapsed = time.perf_counter() - started
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        metrics.latency.labels(path, request.method).observe(elapsed)
    log.info(
        "request",
        extra={
            "fields": {
                "method": request.method,
                "route": path,
                "status": response.status_code,
                "ms": round(elapsed * 1000, 2),
            }
        },
    )
    return response


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise StarletteHTTPException(413, self.message)
            return message

        await self.app(scope, limited, send)

    @property
    def message(self) -> str:
        return (
            f"the request body is over the {self.max_bytes:,}-byte limit ({self.max_bytes / 2**20:g} MiB, "
            "SEARCHSVC_MAX_BODY_BYTES): send fewer or smaller documents per request"
        )

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(error_body("too_large", self.message), status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` and multi-worker runs: settings from the environment, JSON logs."""
    configure_json_logging()
    return create_app(Settings())
