"""``searchsvc ingest FOLDER --watch``: keep a collection in sync with a folder until Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from ingest.watch import FolderWatcher, SyncBatch
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.errors import InvalidInputError
from searchsvc.providers import EmbedderRegistry
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.store import Store


def watch_folder(settings: Settings, out: Output, path: Path, name: str, options: dict[str, Any]) -> None:
    """Ingest ``path``, then every change to it, printing one line (or JSON object) per batch of changes."""
    if not path.is_dir():
        raise InvalidInputError(f"--watch takes a folder; {path} is not one")
    store = Store(settings)
    embedders = EmbedderRegistry(settings)
    try:

        def provider() -> EmbeddingProvider:  # asked each run: a model switch may change it while we watch
            return embedders.for_existing_or_new(store.find_collection(name))

        out.note(f"Embedding with {provider().describe()}; watching {path} (Ctrl-C stops)")
        run_options = {**options, "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
                       "max_file_bytes": settings.max_file_bytes}  # fmt: skip
        watcher = FolderWatcher(store, provider, path, name, run_options, settings.watch_debounce_ms)
        logging.getLogger("watchfiles").setLevel(logging.ERROR)  # its own line about Ctrl-C: ours says it
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends; each batch's work is kept
            watcher.run(lambda batch: _print_batch(out, batch))
        out.note("stopped watching")
    finally:
        store.close()
        embedders.close()


def _json_line(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str), flush=True)


def _print_batch(out: Output, batch: SyncBatch) -> None:
    counts = {key: sum(int(r.get(key) or 0) for r in batch.reports) for key in ("added", "changed", "renamed")}
    tokens = sum(int(r.get("tokens_embedded") or 0) for r in batch.reports)
    removed = len(batch.removed) + sum(int(r.get("removed") or 0) for r in batch.reports)
    renames = [f"{m['from']} -> {m['to']}" for r in batch.reports for m in r.get("renames", [])]
    failed = [f"{f['path']}: {f['reason']}" for r in batch.reports for f in r.get("failed", [])]
    if out.json_mode:  # one JSON object per line, as each batch ends
        _json_line({"event": "synced", "at": time.time(), "full_run": batch.full_run, **counts, "removed": removed,
                  "tokens_embedded": tokens, "renames": renames, "failed": failed,
                  "paths": batch.changed, "removed_paths": batch.removed})  # fmt: skip
        return
    what = "the whole folder" if batch.full_run else f"{len(batch.changed) + len(batch.removed)} changed paths"
    out.console.print(
        f"{time.strftime('%H:%M:%S')} synced {what}: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['renamed']} renamed, {removed} removed, {tokens} tokens embedded",
        highlight=False,
    )
    for line in renames:
        out.console.print(f"  renamed {line}", highlight=False, markup=False)
    for line in failed:
        out.console.print(f"  failed {line}", highlight=False, markup=False, style="yellow")
