"""The token ledger in SQL (``usage_ledger``): what every embedding and chat call used, and cost.

Ingestion writes its rows in the transaction that keeps the vectors they paid for (``record_now``), so
the ledger never misses a committed batch nor counts one that was rolled back. Searches and answers
report through ``SqlLedger``, written in the background (a request never waits for it). Costs are worked
out when a row is written, at the prices set then (``SEARCHSVC_EMBEDDING_PRICES``,
``SEARCHSVC_CHAT_PRICES``); a model without a price has a null cost, and the totals say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from searchsvc.errors import InvalidInputError
from searchsvc.providers.usage import Usage
from searchsvc.storage.background import BackgroundWriter
from searchsvc.storage.schema import UsageRecord, utcnow

GROUPS = ("model", "collection", "purpose", "day")
CHAT_PURPOSES = ("answer", "rewrite")


class Prices:
    """USD per million tokens: embedding models (input only) and chat models (input, output)."""

    def __init__(self, embedding: dict[str, float], chat: dict[str, tuple[float, float]]) -> None:
        self.embedding, self.chat = embedding, chat

    def cost(self, usage: Usage) -> float | None:
        if usage.kind == "local":
            return 0.0
        if usage.purpose in CHAT_PURPOSES:
            price = self.chat.get(usage.model)
            if price is None:
                return None
            return (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1e6
        per_million = self.embedding.get(usage.model)
        return None if per_million is None else usage.input_tokens * per_million / 1e6


def row_of(usage: Usage, prices: Prices) -> dict[str, Any]:
    return {"at": utcnow(), "kind": usage.kind, "model": usage.model, "purpose": usage.purpose,
            "collection": usage.collection, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "requests": usage.requests, "cost_usd": prices.cost(usage), "estimated": usage.estimated}  # fmt: skip


def record_now(session: Session, usage: Usage, prices: Prices) -> None:
    """A row in the caller's transaction (committed with what it paid for)."""
    session.execute(insert(UsageRecord).values(row_of(usage, prices)))


class SqlLedger:
    """The ``UsageSink`` of searches and answers: rows written in the background."""

    def __init__(self, session: Callable[[], Session], prices: Prices) -> None:
        self._session, self.prices = session, prices
        self._writer: BackgroundWriter[dict[str, Any]] = BackgroundWriter(self._write, "usage-ledger")

    def record(self, usage: Usage) -> None:
        self._writer.put(row_of(usage, self.prices))

    def close(self) -> None:
        self._writer.close()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self._session() as session:
            session.execute(insert(UsageRecord).values(rows))
            session.commit()


def summary(session: Session, since: datetime | None, by: str) -> list[dict[str, Any]]:
    """Totals per ``by`` (model, collection, purpose or day), largest cost first, since ``since``."""
    key = func.date(UsageRecord.at) if by == "day" else getattr(UsageRecord, by)
    query = select(
        key.label("key"),
        func.sum(UsageRecord.input_tokens),
        func.sum(UsageRecord.output_tokens),
        func.sum(UsageRecord.requests),
        func.sum(UsageRecord.cost_usd),
        func.count(UsageRecord.id) - func.count(UsageRecord.cost_usd),
        func.count(UsageRecord.id),
    ).group_by(key)
    if since is not None:
        query = query.where(UsageRecord.at >= since)
    rows = [
        {by: None if k is None else str(k), "input_tokens": int(i or 0), "output_tokens": int(o or 0),
         "requests": int(r or 0), "cost_usd": round(float(c or 0), 6), "rows_without_price": int(unpriced),
         "calls": int(n)}
        for k, i, o, r, c, unpriced, n in session.execute(query)
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (-row["cost_usd"], -row["input_tokens"]))


def totals(session: Session) -> list[tuple[str, str, int, int, int, float]]:
    """(model, purpose, input tokens, output tokens, requests, cost) over the whole ledger."""
    query = select(
        UsageRecord.model,
        UsageRecord.purpose,
        func.sum(UsageRecord.input_tokens),
        func.sum(UsageRecord.output_tokens),
        func.sum(UsageRecord.requests),
        func.sum(UsageRecord.cost_usd),
    ).group_by(UsageRecord.model, UsageRecord.purpose)
    return [(m, p, int(i or 0), int(o or 0), int(r or 0), float(c or 0)) for m, p, i, o, r, c in session.execute(query)]


SINCE = re.compile(r"^(\d+)([mhd])$")


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``24h``, ``30m`` ago, or an ISO date or time (UTC when it has no zone)."""
    if text is None or not text.strip():
        return None
    relative = SINCE.match(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        span = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return (now or utcnow()) - span
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"since={text!r} is neither a time span (7d, 24h, 30m) nor an ISO date or time (2026-12-01)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
