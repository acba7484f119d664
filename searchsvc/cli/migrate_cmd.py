"""``searchsvc collections migrate NAME``: switch a collection's embedding model with no downtime."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ingest.model_switch import ModelSwitch
from ingest.shadow import ShadowPass
from searchsvc.cli.admin_cmd import collections_app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.crashpoints import Crashpoints
from searchsvc.errors import InvalidInputError
from searchsvc.providers import EmbedderRegistry
from searchsvc.storage import model_migrations as mm
from searchsvc.store import Store

MODEL_HELP = (
    "Embed the collection again with this model (the local one, or one the API serves) and swap it in when done; "
    "run it again to resume after a stop."
)


@collections_app.command("migrate")
def migrate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The collection.")],
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Return to the model the last switch replaced.")] = False,
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="Drop the generation not in use (no rollback after this).")
    ] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Give up a switch still building.")] = False,
    lock_wait: Annotated[
        float | None, typer.Option(help="Seconds to wait for an ingestion before the swap [default: 600].", min=0)
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the migration as JSON.")] = False,
) -> None:
    """Switch a collection's embedding model with no downtime.

    The texts already in SQL are embedded with the new model (each text paid once; a stopped run resumes)
    and indexed beside the old vectors while searches and ingestion go on with the old model; then the
    collection is swapped to the new model in one step. Searches never fail and never mix two models.
    The old model's generation is kept for --rollback until --drop-old. With no option: the switches so far.
    """
    settings: Settings = ctx.obj
    actions = [a for a, on in (("--model", model is not None), ("--rollback", rollback), ("--drop-old", drop_old),
                               ("--cancel", cancel)) if on]  # fmt: skip
    if len(actions) > 1:
        raise InvalidInputError(f"choose one of {', '.join(actions)}")
    out = Output(json_out)
    store = Store(settings, create=False)
    embedders = EmbedderRegistry(settings)
    try:
        wait = settings.migration_lock_wait_seconds if lock_wait is None else lock_wait
        progress = None if json_out else _printer(out)
        switch = ModelSwitch(store, embedders, wait, progress, Crashpoints(settings.crash_at))
        if not actions:
            _show(out, store, name)
            return
        if model is not None:
            switch.start(name, model)
            migration = switch.build(name)
        elif rollback:
            migration = switch.rollback(name)
        elif drop_old:
            migration = switch.drop_old(name)
        else:
            migration = switch.cancel(name)
        _print(out, mm.as_dict(migration, name))
    finally:
        embedders.close()
        store.close()


def _printer(out: Output) -> Any:
    def progress(done: ShadowPass) -> None:
        out.note(f"{done.chunks} chunks read: {done.embedded} texts embedded, {done.cached} already had vectors")

    return progress


def _show(out: Output, store: Store, name: str) -> None:
    collection = store.get_collection(name)
    with store.session() as session:
        found = [mm.as_dict(m, name) for m in mm.migrations_of(session, collection.id)]
    if out.json_mode:
        out.data({"object": "list", "data": found})
        return
    if not found:
        out.console.print(f"{name}: {collection.provider} model {collection.embedding_model}; no model switch yet")
    for item in found:
        _print(out, item)


def _print(out: Output, item: dict[str, Any]) -> None:
    if out.json_mode:
        out.data(item)
        return
    source, target = item["from"], item["to"]
    out.console.print(
        f"{item['collection']}: {source['model']} -> {target['model']} ({target['dimension']} dimensions) "
        f"{item['status']}; {item['chunks']} chunks, {item['texts_embedded']} texts embedded "
        f"({item['tokens']} tokens, {item['requests']} requests), {item['texts_cached']} already had vectors"
        + (f"; {item['message']}" if item["message"] else ""),
        highlight=False,
        markup=False,
    )
