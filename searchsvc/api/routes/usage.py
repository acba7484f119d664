"""The token ledger: what embedding and chat calls used and cost, by model, collection, purpose or day."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from searchsvc.api.auth import READ
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS
from searchsvc.storage.usage_ledger import parse_since, summary

router = APIRouter(prefix="/v1/usage", tags=["usage"], responses=ERRORS)

Group = Literal["model", "collection", "purpose", "day"]


class UsageRow(BaseModel):
    model: str | None = None
    collection: str | None = None
    purpose: str | None = None
    day: str | None = None
    input_tokens: int
    output_tokens: int = Field(description="Chat completions' tokens (embeddings have none).")
    requests: int
    calls: int = Field(description="Ledger rows: a call, or one ingestion batch's request.")
    cost_usd: float = Field(description="At the prices set when each call was recorded.")
    rows_without_price: int = Field(description="Calls of models without a price: their cost is not in cost_usd.")


class UsageOut(BaseModel):
    object: Literal["usage"] = "usage"
    by: Group
    since: str | None
    data: list[UsageRow]


@router.get("", dependencies=READ, summary="Tokens, requests and cost from the token ledger", response_model=UsageOut)
async def usage(
    svc: SvcDep,
    by: Group = "model",
    since: Annotated[str | None, Query(max_length=64, description="7d, 24h, 30m, or an ISO date or time")] = None,
) -> Any:
    """Every embedding (ingestion, queries) and chat call (answers, rewrites) of every process on this
    database; ingestion's rows are written with the vectors they paid for, so they agree with what is stored."""

    def run() -> dict[str, Any]:
        start = parse_since(since)
        with svc.store.session() as session:
            rows = summary(session, start, by)
        return {"object": "usage", "by": by, "since": start.isoformat() if start else None, "data": rows}

    return await run_in_threadpool(run)
