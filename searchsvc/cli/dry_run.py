"""``searchsvc ingest PATH --dry-run``: what an ingestion would embed and cost, per model; nothing written or sent."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.estimate import estimate_path
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.storage.database import NoDatabaseError
from searchsvc.store import Store


def dry_run(settings: Settings, path: Path, name: str, options: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """The estimate of ingesting ``path`` into collection ``name`` for each of ``models`` (none: its own)."""
    with _read_only_store(settings) as store:
        return estimate_path(
            store, settings, path, name, models, include=options["include"], exclude=options["exclude"]
        )


@contextmanager
def _read_only_store(settings: Settings) -> Iterator[Store]:
    """The database, never created: without one (nothing ingested yet) an empty one in a temporary folder."""
    try:
        store = Store(settings, create=False)
    except NoDatabaseError:
        with tempfile.TemporaryDirectory(prefix="searchsvc-dry-run-") as folder:
            blank = {"data_dir": Path(folder), "database_url": None, "vector_backend": "faiss"}  # holds nothing
            empty = Store(settings.model_copy(update=blank))
            try:
                yield empty
            finally:
                empty.close()
        return
    try:
        yield store
    finally:
        store.close()


def print_estimate(out: Output, result: dict[str, Any]) -> None:
    out.console.print(
        f"Dry run of {result['path']} into collection {result['collection']}: nothing written, nothing sent",
        highlight=False,
        markup=False,
    )
    for row in result["models"]:
        docs = row["documents"]
        price, cost, minutes = row["price_per_million_tokens"], row["cost_usd"], row["minutes_at_rate_limit"]
        money = "cost unknown" if cost is None else f"${cost:,.4f} at ${price:g} per 1M tokens"
        pace = (
            "no tokens-per-minute limit set" if minutes is None else f"{minutes:,} min at the tokens-per-minute limit"
        )
        out.console.print(
            f"  {row['model']} ({row['provider']}): {docs['added'] + docs['changed']:,} documents to embed "
            f"({docs['unchanged'] + docs['renamed']:,} unchanged or renamed, {docs['skipped']:,} skipped), "
            f"{row['chunks']:,} chunks ({row['chunks_cached']:,} in the cache), {row['tokens']:,} tokens in "
            f"{row['requests']:,} requests = {row['pages']:,} pages; {money}; {pace}",
            highlight=False,
            markup=False,
        )
        if row["note"]:
            out.note(row["note"])
    out.note(f"a page is {result['tokens_per_page']} tokens; prices: SEARCHSVC_EMBEDDING_PRICES (USD per 1M tokens)")
