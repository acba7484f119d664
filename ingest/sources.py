"""Where documents come from: a folder walked recursively, or a JSONL file of records."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ingest.document import ParsedDocument, SkippedDocument, SourceDocument
from ingest.parsers import format_for, parse_bytes
from ingest.parsers.text import parse_text
from searchsvc.textclean import clean_json, clean_text

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024

Found = SourceDocument | SkippedDocument


def discover(
    path: Path,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    follow_external_symlinks: bool = False,
) -> Iterator[Found]:
    """Documents under ``path``: a folder, a ``.jsonl`` file of records, or one document file."""
    path = Path(path)
    if path.is_dir():
        yield from walk_folder(path, include, exclude, max_file_bytes, follow_external_symlinks)
    elif path.suffix.lower() == ".jsonl":
        yield from read_jsonl(path)
    elif path.is_file():
        yield _file_document(path, path.name, path.name, max_file_bytes)
    else:
        yield SkippedDocument(str(path), "no such file or folder")


def walk_folder(
    root: Path,
    include: list[str] | None,
    exclude: list[str] | None,
    max_file_bytes: int,
    follow_external_symlinks: bool,
) -> Iterator[Found]:
    """Supported files below ``root`` in sorted order; hidden entries and symlink loops are skipped."""
    root = root.resolve()
    source = root.name
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        current = Path(dirpath)
        stat = current.stat()
        if (stat.st_dev, stat.st_ino) in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and _inside(current / d, root, follow_external_symlinks)
        )
        for name in sorted(filenames):
            file_path = current / name
            relative = file_path.relative_to(root).as_posix()
            if name.startswith(".") or not _selected(relative, include, exclude):
                continue
            if not _inside(file_path, root, follow_external_symlinks):
                yield SkippedDocument(relative, "symlink points outside the ingested folder")
                continue
            if format_for(file_path) is None:
                continue
            yield _file_document(file_path, f"{source}/{relative}", source, max_file_bytes)


def _inside(path: Path, root: Path, follow_external: bool) -> bool:
    if follow_external or not path.is_symlink():
        return True
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _selected(relative: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    if include and not any(fnmatch.fnmatch(relative, pattern) for pattern in include):
        return False
    return not (exclude and any(fnmatch.fnmatch(relative, pattern) for pattern in exclude))


def _file_document(path: Path, key: str, source: str, max_file_bytes: int) -> Found:
    fmt = format_for(path)
    if fmt is None:
        return SkippedDocument(str(path), f"unsupported file type {path.suffix or '(none)'}")
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            return SkippedDocument(str(path), f"file is {size} bytes, over the {max_file_bytes}-byte limit")
        data = path.read_bytes()
    except OSError as exc:
        return SkippedDocument(str(path), f"unreadable: {exc.strerror or exc}")
    if fmt != "pdf" and b"\x00" in data[:8192]:
        return SkippedDocument(str(path), "binary content (NUL bytes)")
    return SourceDocument(
        key=key,
        source=source,
        path=str(path),
        content_hash=hashlib.sha256(data).hexdigest(),
        load=lambda: parse_bytes(data, fmt),
        metadata={"format": fmt},
    )


def read_jsonl(path: Path) -> Iterator[Found]:
    """Records ``{"id"|"_id", "text", "title"?, "metadata"?}``, one per line; bad lines are reported."""
    source = path.name
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        yield SkippedDocument(str(path), f"unreadable: {exc.strerror or exc}")
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _record(line, f"{path}:{number}", source, str(path))


def _record(line: str, where: str, source: str, path: str) -> Found:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return SkippedDocument(where, f"invalid JSON: {exc.msg}")
    if not isinstance(record, dict):
        return SkippedDocument(where, "a record must be a JSON object")
    record_id = record.get("id", record.get("_id"))
    text = record.get("text")
    title = record.get("title") or None
    metadata = record.get("metadata") or {}
    if not isinstance(record_id, str | int) or str(record_id) == "":
        return SkippedDocument(where, 'missing "id" (or "_id")')
    if not isinstance(text, str) or not (text.strip() or (isinstance(title, str) and title.strip())):
        return SkippedDocument(where, 'missing or empty "text"')
    if not isinstance(metadata, dict) or (title is not None and not isinstance(title, str)):
        return SkippedDocument(where, '"metadata" must be an object and "title" a string')
    return record_document(str(record_id), text, title, metadata, source, path)


def record_document(
    record_id: str, text: str, title: str | None, metadata: dict[str, object], source: str, path: str | None
) -> SourceDocument:
    """A text record (JSONL line or API upsert) as a document keyed by its id."""
    record_id, text = clean_text(record_id), clean_text(text)
    title, metadata = (clean_text(title) if title else title), clean_json(metadata)
    canonical = json.dumps([title, text, metadata], sort_keys=True, ensure_ascii=False)
    return SourceDocument(
        key=record_id,
        source=source,
        path=path,
        content_hash=hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest(),
        load=lambda: _record_document(text),
        title=title,
        metadata=dict(metadata),
    )


def _record_document(text: str) -> ParsedDocument:
    return parse_text(text)
