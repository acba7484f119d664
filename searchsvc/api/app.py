"""App factory: ``create_app(settings)`` builds the FastAPI service."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Route

from searchsvc import __version__
from searchsvc.api.deps import Services
from searchsvc.api.docs_pages import install_docs
from searchsvc.api.error_handlers import MULTIPART_OVERHEAD, UPLOAD_PATH, BodySizeLimit, install_error_handlers
from searchsvc.api.mcp import McpEndpoint, SearchsvcMCP
from searchsvc.api.metrics import Metrics
from searchsvc.api.routes import (
    ask,
    chat,
    collections,
    conversations,
    embeddings,
    estimates,
    files,
    health,
    jobs,
    migrations,
    models,
    openai_responses,
    search,
    usage,
    vector_store_batches,
    vector_stores,
)
from searchsvc.api.ui_page import install_ui
from searchsvc.api.write_queue import UpsertQueue
from searchsvc.config import Settings
from searchsvc.jobs.runner import JobRunner
from searchsvc.logs import configure_json_logging
from searchsvc.runtime import QueryProviders
from searchsvc.storage.faiss_index import set_faiss_threads
from searchsvc.store import Store

log = logging.getLogger("searchsvc.api")


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app over the store and providers the settings describe."""
    mcp_endpoint = McpEndpoint(SearchsvcMCP(settings, lambda: app.state.services))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each request is one query: FAISS gains nothing from OpenMP teams per request thread, and
        # concurrent requests already fill the cores (bench/query_scale.py measures both settings).
        set_faiss_threads(settings.faiss_threads or 1)
        store = Store(settings)
        providers = QueryProviders.open(settings, store)
        embedders, chat = providers.embedders, providers.chat
        services = Services(settings, store, embedders, chat, upserts=None)  # type: ignore[arg-type]
        services.upserts = UpsertQueue(services.ingest, settings.max_queued_documents)
        services.ledger = providers.ledger
        app.state.services = services
        app.state.metrics = services.metrics = Metrics(store, embedders.query_cache_counts)
        # Without a broker this server runs jobs itself; with one, Celery workers do.
        runner = JobRunner(store, services.run_job, settings if settings.broker_url is None else _no_runners(settings))
        runner.start()
        migrations.resume_builds(services)  # model switches a stopped server was building
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
            async with mcp_endpoint.running():
                yield
        finally:
            runner.close()  # a running job is handed back at its next progress report, resumed by the next runner
            services.upserts.close()
            providers.close()
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
    install_ui(app)
    app.state.settings = settings
    install_error_handlers(app)
    app.middleware("http")(_observe)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["*"], allow_headers=["*"]
        )
    uploads = {UPLOAD_PATH: settings.max_file_bytes + MULTIPART_OVERHEAD}
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, by_path=uploads)
    _add_routes(app, mcp_endpoint)
    return app


def _add_routes(app: FastAPI, mcp_endpoint: McpEndpoint) -> None:
    """One router per resource, then MCP at /mcp (outside the OpenAPI schema: it speaks JSON-RPC)."""
    routers = (health.router, search.router, collections.router, jobs.router, estimates.router, ask.router,
               models.router, files.router, vector_stores.router, vector_store_batches.router, embeddings.router,
               chat.router, openai_responses.router, conversations.router, usage.router, migrations.router)  # fmt: skip
    for router in routers:
        app.include_router(router)
    app.router.routes.append(Route("/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False))


def _no_runners(settings: Settings) -> Settings:
    return settings.model_copy(update={"job_workers": 0})


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


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` and multi-worker runs: settings from the environment, JSON logs."""
    configure_json_logging()
    return create_app(Settings())
