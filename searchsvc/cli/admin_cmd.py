"""``searchsvc collections`` (a group: `migrate` lives in `migrate_cmd`), ``models``, ``reindex``, ``db upgrade``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from searchsvc.cli import app, db_app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.providers import make_http_client, remote_available
from searchsvc.providers.models import api_models, local_models
from searchsvc.storage import database
from searchsvc.storage import repository as repo
from searchsvc.storage.database import NoDatabaseError
from searchsvc.store import Store

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


collections_app = typer.Typer(
    help="Collections: `searchsvc collections` lists them; `collections migrate NAME --model M` switches one's "
    "embedding model with no downtime.",
    invoke_without_command=True,
)
app.add_typer(collections_app, name="collections")


@collections_app.callback()
def collections(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List collections with their model, dimension, index type and sizes."""
    if ctx.invoked_subcommand is not None:
        return
    out = Output(json_out)
    try:
        store = Store(ctx.obj, create=False)
    except NoDatabaseError:  # nothing ingested here yet: an empty list, and nothing created
        items = []
    else:
        items = _collection_items(store)
    if json_out:
        out.data({"collections": items})
        return
    table = Table("name", "provider", "model", "dim", "index", "in use", "documents", "chunks")
    for item in items:
        table.add_row(
            *(
                str(item[key])
                for key in (
                    "name",
                    "provider",
                    "embedding_model",
                    "dimension",
                    "index_type",
                    "index_in_use",
                    "documents",
                    "chunks",
                )
            )
        )
    out.console.print(table if items else "No collections yet: run `searchsvc ingest PATH`.")


def _collection_items(store: Store) -> list[dict[str, object]]:
    try:
        return [asdict(summary) for summary in store.summaries()]
    finally:
        store.close()


@app.command()
def models(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the models on offer: the local embedding model, and what the configured API lists (GET /models)."""
    settings: Settings = ctx.obj
    out = Output(json_out)
    found = local_models(settings.local_model_dir)
    if remote_available(settings):
        client = make_http_client(settings)
        try:
            listed = api_models(client)
        finally:
            client.close()
        if not listed:
            out.note(f"The API at {settings.endpoint('embeddings').base_url} lists no models.")
        found += listed
    else:
        out.note("No API configured (AIMLAPI_API_KEY or SEARCHSVC_BASE_URL): only the local model is available.")
    if json_out:
        out.data({"models": [asdict(m) for m in found]})
        return
    for model in found:
        details = ", ".join(
            str(v) for v in (model.type, f"{model.dimension} dimensions" if model.dimension else None) if v
        )
        out.console.print(
            f"{model.id}  ({model.provider}{'; ' + details if details else ''})", highlight=False, markup=False
        )


def _collection_names(store: Store, only: str | None) -> list[str]:
    """The one named collection, or every collection."""
    if only:
        return [only]
    with store.session() as session:
        return [c.name for c, _, _ in repo.list_collections(session)]


@app.command()
def reindex(
    ctx: typer.Context,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only this collection.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Rebuild vector indexes from the vectors stored in SQL; calls no API."""
    out = Output(json_out)
    store = Store(ctx.obj, create=False)
    rebuilt = []
    try:
        for name in _collection_names(store, collection):
            target = store.get_collection(name)
            if target.dimension is None:
                continue
            with store.writer_lock(name):
                target = store.get_collection(name)  # under the lock: a model switch may have swapped it
                index = store.rebuild_index(target)
            in_use = index.manifest.index_type
            rebuilt.append(
                {"collection": name, "vectors": index.count(), "index_type": target.index_type, "index_in_use": in_use}
            )
            out.note(f"Rebuilt {name}: {index.count()} vectors ({in_use}, setting {target.index_type})")
    finally:
        store.close()
    if json_out:
        out.data({"reindexed": rebuilt})


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Apply database migrations up to the latest schema (also done automatically)."""
    settings: Settings = ctx.obj
    out = Output(json_out)
    engine = database.create_db_engine(settings.resolved_database_url)
    try:
        before = database.current_revision(engine)
        database.upgrade(engine)
        after = database.current_revision(engine)
    finally:
        engine.dispose()
    if json_out:
        out.data({"from": before, "to": after})
    else:
        out.console.print(f"Database at revision {after} (was {before or 'empty'}).")


@app.command()
def doctor(
    ctx: typer.Context,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only this collection.")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found, from SQL.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Check that SQL and every vector index agree (ids, counts, dimensions, model); --repair fixes them."""
    from searchsvc.doctor import check_collection, repair_collection

    out = Output(json_out)
    store = Store(ctx.obj, create=False)
    reports = []
    try:
        for name in _collection_names(store, collection):
            target = store.get_collection(name)
            health = check_collection(store, target)
            if repair and not health.ok:
                repair_collection(store, target, health)
            reports.append(health)
    finally:
        store.close()
    if json_out:
        out.data({"collections": [r.as_dict() for r in reports], "ok": all(r.ok for r in reports)})
    else:
        for r in reports:
            status = "ok" if r.ok else f"{len(r.problems)} problem(s)"
            out.console.print(f"{r.collection}: {r.chunks} chunks, {r.vectors} vectors: {status}", markup=False)
            for problem in r.problems:
                out.console.print(f"  - {problem}", markup=False)
            for fix in r.repaired:
                out.console.print(f"  fixed: {fix}", markup=False)
    if any(not r.ok for r in reports) and not repair:
        raise typer.Exit(1)
