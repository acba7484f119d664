"""A collection's embedding model switched with no downtime (``searchsvc collections migrate``).

1. ``start``: a migration row names the new model and a new index generation (``NAME@G``).
2. ``build``: every text in SQL is embedded with the new model (``ShadowEmbedder``: paid once, resumable)
   and the shadow index built from those vectors, while searches and ingestion go on with the old model.
3. Under the collection's writer lock: the texts written meanwhile are embedded too, the shadow index
   caught up, every chunk checked to have a vector of the new model, and the collection's row pointed at
   the new generation in one conditional update. A search reads the row once and uses the model and the
   index of that read (``Store.collection_for``): it never mixes two models' vectors, and one that embedded
   its query just before the swap finishes on the old generation, which stays until ``drop_old``.
4. ``rollback`` is the same swap the other way (texts written since the swap embedded with the old model);
   ``drop_old`` drops the generation not in use; ``cancel`` gives up a build.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from ingest.shadow import ShadowEmbedder, ShadowPass
from searchsvc.crashpoints import NO_CRASHES, Crashpoints
from searchsvc.errors import InvalidInputError, MigrationStateError, NotFoundError
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.prompts import built_by, collection_vectors_key
from searchsvc.storage import model_migrations as mm
from searchsvc.storage import repository as repo
from searchsvc.storage.collection_indexes import key as index_key
from searchsvc.storage.schema import Collection, ModelMigration, utcnow
from searchsvc.storage.vector_store import index_name
from searchsvc.store import Store

SHOWN_SAMPLE = 5  # documents named in a message


class ModelSwitch:
    """Starts, builds, swaps, rolls back and drops model switches of one store's collections."""

    def __init__(
        self,
        store: Store,
        embedders: EmbedderRegistry,
        lock_wait_seconds: float = 600.0,
        progress: Callable[[ShadowPass], None] | None = None,
        crashpoints: Crashpoints = NO_CRASHES,
    ) -> None:
        self.store, self.embedders, self.lock_wait_seconds = store, embedders, lock_wait_seconds
        self.progress, self.crashpoints = progress, crashpoints

    # Starting -------------------------------------------------------------------

    def start(self, name: str, model: str) -> ModelMigration:
        """The migration of ``name`` to ``model``: a new one, or the open one it resumes. Nothing is embedded
        yet except, for an API model, one probe that checks the model exists and tells its dimension. Under the
        migration lock: two starts at once make one migration (MigrationBusyError while one is building)."""
        with self.store.writer_lock(name, role="migration"):
            return self._start(name, model)

    def _start(self, name: str, model: str) -> ModelMigration:
        collection = self.store.get_collection(name)
        if collection.dimension is None:
            raise InvalidInputError(f"collection {name!r} has no vectors yet: ingest it with the model you want")
        provider = self.embedders.for_new_collection(model)
        if built_by(collection, provider):
            raise InvalidInputError(f"collection {name!r} already uses {provider.describe()}")
        with self.store.session() as session:
            found = mm.open_migration(session, collection.id)
        if found is not None:
            resumed = self._resume(collection, found, provider)
            if resumed is not None:
                return resumed
        self.embedders.check_new_model(provider)  # 400 when the API does not know the model
        with self.store.session() as session:
            migration = ModelMigration(
                collection_id=collection.id, status="building",
                from_generation=collection.vector_generation or 0, from_provider=collection.provider,
                from_model=collection.embedding_model, from_dimension=collection.dimension,
                from_prompts=collection.embedding_prompts, to_prompts=provider.prompts.to_json(),
                to_generation=mm.next_generation(session, collection), to_provider=provider.kind,
                to_model=provider.model, to_dimension=provider.dimension,
                chunks_total=len(repo.chunk_ids(session, collection.id)), texts_embedded=0, texts_cached=0,
                tokens=0, requests=0, heartbeat_at=utcnow(),
            )  # fmt: skip
            session.add(migration)
            session.commit()
            return migration

    def _resume(
        self, collection: Collection, found: ModelMigration, provider: EmbeddingProvider
    ) -> ModelMigration | None:
        """The open migration when it goes to ``provider``'s model (a rolled-back one is reopened); None when
        a rolled-back one to another model can be closed first; else MigrationStateError."""
        same_target = built_by(mm.view(collection, found, "to"), provider)
        if same_target and found.status in ("building", "rolled_back"):
            with self.store.session() as session:
                row = session.get(ModelMigration, found.id)
                assert row is not None
                row.status, row.message, row.heartbeat_at = "building", None, utcnow()
                session.commit()
                return row
        if found.status == "rolled_back":  # abandoned for another model: its generation goes
            self._close(collection, found, "finished")
            return None
        raise MigrationStateError(
            f"collection {collection.name!r} has an open switch to {found.to_provider} model {found.to_model!r} "
            f"({found.status}): {_next_step(found)}"
        )

    # Building and swapping ----------------------------------------------------------

    def build(self, name: str) -> ModelMigration:
        """Embed, index and swap the open migration of ``name`` (resumable: run it again after a kill)."""
        with self.store.writer_lock(name, role="migration"):
            collection, migration = self._open(name, "building")
            target = mm.view(collection, migration, "to")
            provider = self.embedders.for_collection(target)
            self._embed(collection, migration, target, provider)  # the bulk, while writers go on
            target = self._with_dimension(target, migration)
            self.store.indexes.follow(target, publish="now")
            self._still_building(name, migration, target)
            with self.store.writer_lock(name, self.lock_wait_seconds):
                collection, migration = self._open(name, "building")
                self._embed(collection, migration, target, provider)  # what was written meanwhile
                self._catch_up(collection, target)
                self.crashpoints.hit("before_swap")
                return self._swap(collection, migration, "to", "swapped")

    def rollback(self, name: str) -> ModelMigration:
        """Back to the model the last switch replaced (its generation kept until ``drop_old``)."""
        with self.store.writer_lock(name, role="migration"), self.store.writer_lock(name, self.lock_wait_seconds):
            collection, migration = self._open(name, "swapped")
            old = mm.view(collection, migration, "from")
            self._embed(collection, migration, old, self.embedders.for_collection(old))
            self._catch_up(collection, old)
            return self._swap(collection, migration, "from", "rolled_back")

    def drop_old(self, name: str) -> ModelMigration:
        """Drop the generation not in use: the switch can no longer be rolled back (or, rolled back, resumed)."""
        with self.store.writer_lock(name, self.lock_wait_seconds):
            collection = self.store.get_collection(name)
            with self.store.session() as session:
                migration = mm.open_migration(session, collection.id)
            if migration is None or migration.status == "building":
                raise MigrationStateError(
                    f"collection {name!r} keeps no other model's generation"
                    + (": its switch is still building (--cancel gives it up)" if migration is not None else "")
                )
            return self._close(collection, migration, "finished")

    def cancel(self, name: str) -> ModelMigration:
        """Give up a switch still building: its shadow index goes (vectors already paid for stay in the cache)."""
        with self.store.writer_lock(name, self.lock_wait_seconds):
            collection, migration = self._open(name, "building")
            return self._close(collection, migration, "cancelled")

    def note(self, name: str, message: str) -> None:
        """Keep ``message`` on the open migration of ``name`` (why a background build stopped)."""
        collection = self.store.get_collection(name)
        with self.store.session() as session:
            migration = mm.open_migration(session, collection.id)
            if migration is not None:
                migration.message = message[:2000]
                session.commit()

    # Inside -------------------------------------------------------------------------

    def _open(self, name: str, status: str) -> tuple[Collection, ModelMigration]:
        collection = self.store.get_collection(name)
        with self.store.session() as session:
            migration = mm.open_migration(session, collection.id)
        if migration is None:
            raise NotFoundError(f"collection {name!r} has no open model switch; `--model M` starts one")
        if migration.status != status:
            raise MigrationStateError(f"the switch of {name!r} is {migration.status}: {_next_step(migration)}")
        return collection, migration

    def _embed(
        self, collection: Collection, migration: ModelMigration, side: Collection, provider: EmbeddingProvider
    ) -> None:
        forward = side.vector_generation == migration.to_generation  # not a rollback's pass
        shadow = ShadowEmbedder(self.store.session, provider, migration.id if forward else None, collection.name,
                                self.store.prices(), self.crashpoints)  # fmt: skip
        found = shadow.run(collection.id, side.dimension, lambda done: self._still_open(migration, done))
        with self.store.session() as session:
            row = session.get(ModelMigration, migration.id)
            assert row is not None
            row.chunks_total = found.chunks
            if forward:
                row.to_dimension = row.to_dimension or shadow.dimension
                row.texts_cached = max(0, found.texts - row.texts_embedded)  # had vectors before this switch paid
            row.message = _problems(found, provider)
            session.commit()
        if found.refused or found.unrecoverable:
            raise MigrationStateError(f"the switch of {collection.name!r} cannot swap yet: {row.message}")

    def _still_open(self, migration: ModelMigration, done: ShadowPass) -> None:
        """Called after each page: reports progress, and stops a build cancelled by another process."""
        with self.store.session() as session:
            status = session.scalar(select(ModelMigration.status).where(ModelMigration.id == migration.id))
        if status not in mm.OPEN:
            raise MigrationStateError(f"the switch was {status} by another process; nothing more was embedded")
        if self.progress is not None:
            self.progress(done)

    def _still_building(self, name: str, migration: ModelMigration, target: Collection) -> None:
        """After building the shadow index without the writer lock: if the switch was cancelled meanwhile,
        the index just published is nobody's, and goes."""
        with self.store.session() as session:
            status = session.scalar(select(ModelMigration.status).where(ModelMigration.id == migration.id))
        if status != "building":
            self.store.indexes.drop(index_key(target))
            raise MigrationStateError(f"the switch of {name!r} was {status} by another process while it built")

    def _with_dimension(self, target: Collection, migration: ModelMigration) -> Collection:
        with self.store.session() as session:
            row = session.get(ModelMigration, migration.id)
        assert row is not None and row.to_dimension is not None
        target.dimension = row.to_dimension
        return target

    def _catch_up(self, collection: Collection, side: Collection) -> None:
        """The side's index in step with SQL as it is now (the writer lock held), or the reason it cannot be."""
        with self.store.session() as session:
            missing = mm.chunks_without_vectors(session, collection.id, collection_vectors_key(side))
        if missing:
            raise MigrationStateError(
                f"{missing} chunks of {collection.name!r} have no vector of {side.embedding_model!r}; run it again"
            )
        self.store.indexes.forget(index_key(side))  # loaded again: a first load catches up with SQL
        self.store.indexes.follow(side, publish="now")

    def _swap(self, collection: Collection, migration: ModelMigration, to: mm.Side, status: str) -> ModelMigration:
        with self.store.session() as session:
            row = session.get(ModelMigration, migration.id)
            assert row is not None
            mm.swap(session, collection, row, to, status)
            session.commit()
            return row

    def _close(self, collection: Collection, migration: ModelMigration, status: str) -> ModelMigration:
        """Mark the migration closed, then drop the generation no longer in use."""
        unused = migration.to_generation if migration.status != "swapped" else migration.from_generation
        self.store.indexes.drop(index_name(collection.name, unused))  # first: a kill between leaves nothing behind
        with self.store.session() as session:
            row = session.get(ModelMigration, migration.id)
            assert row is not None
            row.status, row.finished_at = status, utcnow()
            session.commit()
        return row


def _problems(found: ShadowPass, provider: EmbeddingProvider) -> str | None:
    """What keeps a switch from swapping, or what a user should know about it, in words (None: nothing)."""
    parts = []
    if found.refused:
        reason = next(iter(found.refused.values()))
        parts.append(
            f"{len(found.refused)} texts were refused by {provider.describe()} ({reason}); run it again to retry"
        )
    if found.unrecoverable:
        keys = sorted(set(found.unrecoverable))
        parts.append(
            f"the embedded text of {len(found.unrecoverable)} chunks cannot be rebuilt from SQL (documents "
            f"{keys[:SHOWN_SAMPLE]}): delete and ingest those documents again"
        )
    if found.over_limit:
        limit = provider.limits.max_tokens_per_input
        parts.append(f"{found.over_limit} texts are longer than the {limit} tokens {provider.describe()} reads")
    return "; ".join(parts) or None


def _next_step(migration: ModelMigration) -> str:
    return {
        "building": "run `searchsvc collections migrate NAME --model M` with its model to finish it, or --cancel",
        "swapped": "--rollback returns to the old model; --drop-old keeps the new one for good",
        "rolled_back": "--drop-old drops the abandoned generation; --model M with its model swaps it in again",
    }.get(migration.status, "start another with --model M")
