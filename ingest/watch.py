"""Keep a folder in sync: ingest it once (pruning what is gone), then ingest what changes as it changes.

Changes are gathered by the operating system's file events (``watchfiles``) and debounced: an editor's
save, or a ``git checkout``, arrives as one batch. Files added or modified are ingested one by one (a
file keeps its folder's key, and a moved file is recognised as renamed); files deleted lose their
documents. A batch of many changes, a changed ``.gitignore``/``.searchignore`` or a deleted folder
runs the whole folder again with pruning instead. Ignored, hidden and unsupported files never start one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from ingest.ignores import IGNORE_FILES, IgnoreRules
from ingest.report import IngestReport
from ingest.runs import ingest_path
from ingest.sources import format_for
from searchsvc.errors import NotFoundError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.store import Store

FULL_RUN_OVER = 50  # changed files in one batch above which the whole folder is run again


@dataclass
class SyncBatch:
    """What one batch of changes did."""

    changed: list[str] = field(default_factory=list)  # paths ingested (added, changed or renamed)
    removed: list[str] = field(default_factory=list)
    full_run: bool = False
    reports: list[dict[str, Any]] = field(default_factory=list)


class FolderWatcher:
    def __init__(
        self,
        store: Store,
        provider: Callable[[], EmbeddingProvider],
        folder: Path,
        collection: str,
        options: dict[str, Any],
        debounce_ms: int = 1000,
    ) -> None:
        # the collection's provider asked for each run: a model switch (`collections migrate`) may swap it
        self.store, self.provider, self.collection = store, provider, collection
        self.folder, self.options, self.debounce_ms = folder.resolve(), options, debounce_ms
        self.rules = IgnoreRules.for_tree(self.folder)

    def run(self, on_batch: Callable[[SyncBatch], None], stop: threading.Event | None = None) -> None:
        """The first full run, then one batch per settled burst of changes, until ``stop`` is set."""
        on_batch(SyncBatch(full_run=True, reports=[self._ingest(self.folder, prune=True).as_dict()]))
        events = watchfiles.watch(self.folder, watch_filter=self._relevant, debounce=self.debounce_ms,
                                  stop_event=stop, raise_interrupt=False)  # fmt: skip
        for changes in events:
            on_batch(self.apply(changes))

    def apply(self, changes: set[tuple[watchfiles.Change, str]]) -> SyncBatch:
        paths = sorted({Path(path) for _, path in changes})
        gone = [p for p in paths if not p.exists()]
        present = [p for p in paths if p.is_file()]
        if any(p.name in IGNORE_FILES for p in paths):
            self.rules = IgnoreRules.for_tree(self.folder)
        if len(paths) > FULL_RUN_OVER or any(p.name in IGNORE_FILES or not p.suffix for p in paths):
            report = self._ingest(self.folder, prune=True)
            return SyncBatch([str(p) for p in present], [str(p) for p in gone], True, [report.as_dict()])
        batch = SyncBatch()
        for path in present:  # first: a moved file takes its document before its old path is looked at
            batch.reports.append(self._ingest(path, prune=False).as_dict())
            batch.changed.append(str(path))
        for path in gone:
            if self._remove(path):
                batch.removed.append(str(path))
        return batch

    def _ingest(self, path: Path, prune: bool) -> IngestReport:
        return ingest_path(self.store, self.provider(), path, self.collection, prune=prune,
                           chunk_tokens=self.options["chunk_tokens"], chunk_overlap=self.options["chunk_overlap"],
                           include=self.options.get("include"), exclude=self.options.get("exclude"),
                           max_file_bytes=self.options["max_file_bytes"])  # fmt: skip

    def _remove(self, path: Path) -> bool:
        """The document of a deleted file, if it has one (a renamed file's went with it)."""
        above = self.store.registered_folder(self.store.get_collection(self.collection), path)
        if above is None:
            return False
        folder, label = above
        try:
            self.store.delete_document(self.collection, f"{label}/{path.relative_to(folder).as_posix()}")
        except NotFoundError:
            return False
        return True

    def _relevant(self, change: watchfiles.Change, raw: str) -> bool:
        path = Path(raw)
        try:
            relative = path.relative_to(self.folder).as_posix()
        except ValueError:
            return False
        if any(part.startswith(".") for part in relative.split("/")[:-1]):
            return False  # inside a hidden folder (.git): never ingested
        if path.name in IGNORE_FILES:
            return True
        if path.name.startswith(".") or self.rules.ignored(relative, is_dir=path.is_dir()):
            return False
        return format_for(path) is not None or not path.suffix  # a folder (deleted or added) or a supported file
