"""App factory: ``create_app(settings)`` builds the FastAPI service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from searchsvc import __version__
from searchsvc.config import Settings
from searchsvc.errors import SearchsvcError
from searchsvc.providers import make_embedding_provider
from searchsvc.search import MAX_K, search
from searchsvc.store import Store


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4096, description="Text to search for.")
    k: int = Field(10, ge=1, le=MAX_K, description="How many results.")
    collection: str | None = Field(None, max_length=64, description="Collection; default from settings.")


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app over the store and provider the settings describe."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = Store(settings)
        app.state.provider = make_embedding_provider(settings)
        try:
            yield
        finally:
            app.state.provider.close()
            app.state.store.close()

    app = FastAPI(title="searchsvc", version=__version__, lifespan=lifespan)

    @app.exception_handler(SearchsvcError)
    async def searchsvc_error(_request: Request, exc: SearchsvcError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=exc.http_status)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/search")
    async def search_route(body: SearchRequest, request: Request) -> dict[str, Any]:
        state = request.app.state
        result = await run_in_threadpool(
            search, state.store, state.provider, body.collection or settings.collection, body.query, body.k
        )
        return {"results": [hit.as_dict() for hit in result.hits], "timings_ms": result.timings_ms}

    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` and multi-worker runs: settings from the environment."""
    return create_app(Settings())
