"""``searchsvc usage``: the token ledger."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.storage.database import NoDatabaseError
from searchsvc.storage.usage_ledger import parse_since, summary
from searchsvc.store import Store


class Group(StrEnum):
    model = "model"
    collection = "collection"
    purpose = "purpose"
    day = "day"


@app.command()
def usage(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="7d, 24h, 30m ago, or an ISO date or time.")] = None,
    by: Annotated[Group, typer.Option(help="Group the totals by model, collection, purpose or day.")] = Group.model,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tokens, requests and cost of every embedding and chat call (ingestion, queries, answers, rewrites),
    from the token ledger that every process on the database writes. Costs are at the prices set when each
    call was recorded (SEARCHSVC_EMBEDDING_PRICES, SEARCHSVC_CHAT_PRICES)."""
    out = Output(json_out)
    start = parse_since(since)
    try:
        store = Store(ctx.obj, create=False)
    except NoDatabaseError:  # nothing ingested here yet: nothing used, and nothing created
        rows = []
    else:
        try:
            with store.session() as session:
                rows = summary(session, start, by.value)
        finally:
            store.close()
    if json_out:
        out.data({"by": by.value, "since": start.isoformat() if start else None, "data": rows})
        return
    table = Table(by.value, "calls", "requests", "input tokens", "output tokens", "cost (USD)")
    for row in rows:
        cost = f"{row['cost_usd']:.6f}" + (
            f" (+{row['rows_without_price']} unpriced)" if row["rows_without_price"] else ""
        )
        table.add_row(str(row[by.value]), f"{row['calls']:,}", f"{row['requests']:,}", f"{row['input_tokens']:,}",
                      f"{row['output_tokens']:,}", cost)  # fmt: skip
    out.console.print(table if rows else "Nothing recorded yet.")
