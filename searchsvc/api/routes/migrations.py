"""A collection's embedding model switched with no downtime: ``/v1/collections/{name}/migrations``.

``POST`` starts (or resumes) a switch and returns at once (202): the server builds it in the background
while searches go on with the old model, then swaps. ``GET`` follows it; ``rollback``, ``drop-old`` and
``cancel`` act on the open one. Each is ``searchsvc collections migrate`` over HTTP.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from ingest.model_switch import ModelSwitch
from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import Services as Svc
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS, MigrationList, MigrationOut
from searchsvc.api.schemas import MigrationBody
from searchsvc.errors import MigrationBusyError, SearchsvcError
from searchsvc.storage import model_migrations as mm
from searchsvc.storage.schema import Collection, ModelMigration
from searchsvc.store import validate_collection_name

router = APIRouter(prefix="/v1/collections/{name}/migrations", tags=["collections"], responses=ERRORS)
log = logging.getLogger(__name__)


def _switch(svc: Svc) -> ModelSwitch:
    return ModelSwitch(svc.store, svc.embedders, svc.settings.migration_lock_wait_seconds)


def _build_in_background(svc: Svc, name: str) -> None:
    """The build and swap, on a thread of this server; a failure is kept in the migration's message."""

    def run() -> None:
        try:
            _switch(svc).build(name)
        except MigrationBusyError:
            log.info("model switch of %s: another process is building it", name)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SearchsvcError) else f"{type(exc).__name__}: {exc}"
            log.warning("model switch of %s stopped: %s", name, message)
            _switch(svc).note(name, f"stopped: {message}; POST the same model again to resume")

    threading.Thread(target=run, name=f"migrate-{name}", daemon=True).start()


def resume_builds(svc: Svc) -> None:
    """At start-up: build every switch left building (by a server stopped mid-way, or a killed command);
    one another process is building is left to it."""
    with svc.store.session() as session:
        names = session.scalars(
            select(Collection.name).join(ModelMigration, ModelMigration.collection_id == Collection.id)
            .where(ModelMigration.status == "building")
        ).all()  # fmt: skip
    for name in names:
        _build_in_background(svc, name)


@router.post("", status_code=202, dependencies=WRITE, summary="Switch the collection's embedding model",
             response_model=MigrationOut)  # fmt: skip
async def start_migration(name: str, body: MigrationBody, svc: SvcDep) -> Any:
    """Embeds every text of the collection with ``model`` from SQL (each text paid once; POST again to resume
    after a stop), indexes it beside the old vectors, and swaps: searches never fail and never mix models."""
    migration = await run_in_threadpool(_switch(svc).start, validate_collection_name(name), body.model)
    _build_in_background(svc, name)
    return mm.as_dict(migration, name)


@router.get("", dependencies=READ, summary="The collection's model switches", response_model=MigrationList)
async def list_migrations(name: str, svc: SvcDep) -> Any:
    def run() -> list[dict[str, Any]]:
        collection = svc.store.get_collection(name)
        with svc.store.session() as session:
            return [mm.as_dict(m, name) for m in mm.migrations_of(session, collection.id)]

    return {"object": "list", "data": await run_in_threadpool(run)}


@router.post("/rollback", dependencies=WRITE, summary="Return to the model the last switch replaced",
             response_model=MigrationOut)  # fmt: skip
async def rollback_migration(name: str, svc: SvcDep) -> Any:
    return mm.as_dict(await run_in_threadpool(_switch(svc).rollback, validate_collection_name(name)), name)


@router.post("/drop-old", dependencies=WRITE, summary="Drop the generation not in use (no rollback after)",
             response_model=MigrationOut)  # fmt: skip
async def drop_old_generation(name: str, svc: SvcDep) -> Any:
    return mm.as_dict(await run_in_threadpool(_switch(svc).drop_old, validate_collection_name(name)), name)


@router.post("/cancel", dependencies=WRITE, summary="Give up a switch still building", response_model=MigrationOut)
async def cancel_migration(name: str, svc: SvcDep) -> Any:
    return mm.as_dict(await run_in_threadpool(_switch(svc).cancel, validate_collection_name(name)), name)
