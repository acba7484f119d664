"""A saved index's files: numbered generations, tombstones, and the manifest that names the current one.

Every file is written to a temporary name, fsynced and renamed; the manifest is replaced last, so a
reader or a crash only ever sees a complete generation.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from searchsvc.errors import StorageError
from searchsvc.storage.vector_store import IndexManifest


def read_manifest(folder: Path) -> IndexManifest | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        return IndexManifest(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise StorageError(f"{path} is unreadable ({exc}); run `searchsvc reindex` to rebuild it") from exc


def write_manifest(folder: Path, manifest: IndexManifest) -> None:
    """Replace the manifest atomically: the generation it names becomes the published one."""
    payload = json.dumps(asdict(manifest), indent=1).encode()
    atomic_write(folder / "manifest.json", lambda tmp: tmp.write_bytes(payload))


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def atomic_write(target: Path, write) -> None:  # type: ignore[no-untyped-def]
    """Write via ``write(tmp_path)``, fsync, then rename over ``target``."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_old_generations(folder: Path, current: int) -> None:
    for path in folder.glob("*-*.faiss"):
        _unlink_if_older(path, current)
    for path in folder.glob("tombstones-*.npy"):
        _unlink_if_older(path, current)


def _unlink_if_older(path: Path, current: int) -> None:
    try:
        generation = int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return
    if generation < current:
        path.unlink(missing_ok=True)
