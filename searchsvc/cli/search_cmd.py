"""``searchsvc search``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.runtime import QueryProviders
from searchsvc.search import search
from searchsvc.store import Store


class Mode(StrEnum):
    vector = "vector"
    keyword = "keyword"
    hybrid = "hybrid"


@app.command("search")
def search_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="How many results.")] = 5,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to search.")] = None,
    mode: Annotated[Mode, typer.Option(help="vector, keyword, or hybrid (both, fused).")] = Mode.hybrid,
    by_document: Annotated[bool, typer.Option("--by-document", help="Best chunk per document.")] = False,
    min_score: Annotated[
        float | None,
        typer.Option(
            help="Drop hits below this: cosine (-1..1) in vector/hybrid mode, keyword score (0+) in keyword mode."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Find the chunks most similar in meaning to QUERY."""
    settings: Settings = ctx.obj
    out = Output(json_out)
    store = Store(settings, create=False)
    providers = QueryProviders.open(settings, store, chat=False)
    embedders = providers.embedders
    name = collection or settings.collection
    try:
        result = search(
            store,
            embedders.for_collection(store.get_collection(name)),
            name,
            query,
            k,
            mode=mode.value,
            group_by="document" if by_document else None,
            min_score=min_score,
        )
    finally:
        providers.close()  # first: it writes the query vectors it keeps and the ledger's rows
        store.close()
    if json_out:
        out.data(
            {
                "query": query,
                "collection": result.collection,
                "mode": result.mode,
                "results": [h.as_dict() for h in result.hits],
                "timings_ms": result.timings_ms,
            }
        )
        return
    if not result.hits:
        out.console.print("No results.")
    for rank, hit in enumerate(result.hits, start=1):
        title = escape(hit.title or hit.document_key)
        out.console.print(f"[bold]{rank}. {title}[/]  score {hit.score:.3f}", highlight=False)
        out.console.print(f"   {hit.location()}", style="dim", highlight=False, markup=False)
        snippet = " ".join(hit.text.split())
        out.console.print(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}", highlight=False, markup=False)
