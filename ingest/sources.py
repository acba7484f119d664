"""Where documents come from: a folder walked recursively, a JSONL file of records, or one file.

Discovery streams: a file is hashed while it is read in blocks and nothing of it is kept; it is read
again only if it must be parsed (new or changed). Memory therefore follows the document being
embedded, never the folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.document import ParsedDocument, SkippedDocument, SourceDocument, SourceUnavailable
from ingest.ignores import IgnoreRules
from ingest.parsers import format_for, parse_bytes
from ingest.parsers.text import SNIFF_BYTES, looks_binary, parse_text
from searchsvc.storage.schema import Collection
from searchsvc.store import Store
from searchsvc.textclean import clean_json, clean_text

DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
READ_BLOCK = 1024 * 1024

Found = SourceDocument | SkippedDocument


@dataclass(frozen=True)
class SourceRoot:
    """What a path given to ``ingest`` stands for.

    ``location`` identifies the source (a folder, a JSONL file); ``parts`` are its path's components,
    from which its label is made; ``only`` is the one file to take when a single file was given (it is
    keyed as if its folder had been ingested, so ingesting a file and its folder agree).
    """

    path: Path
    kind: str  # "folder", "jsonl" or "file"
    location: Path
    only: str | None = None

    @property
    def parts(self) -> list[str]:
        return [part for part in self.location.parts if part not in ("/", "")]


def source_root(path: Path, folder: Path | None = None) -> SourceRoot:
    """What ``path`` stands for; a file is taken as part of ``folder`` (default: the folder it is in)."""
    path = Path(path)
    resolved = path.resolve()
    if path.is_dir():
        return SourceRoot(path, "folder", resolved)
    if path.suffix.lower() == ".jsonl":
        return SourceRoot(path, "jsonl", resolved)
    folder = folder or resolved.parent
    return SourceRoot(path, "file", folder, only=resolved.relative_to(folder).as_posix())


def discover(
    path: Path,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    follow_external_symlinks: bool = False,
    label: str | None = None,
    root: SourceRoot | None = None,
) -> Iterator[Found]:
    """Documents under ``path``: a folder, a ``.jsonl`` file of records, or one document file.

    Folder documents are keyed ``label/relative path`` (``label`` defaults to the folder's name);
    ``root`` overrides how ``path`` is understood (a file as part of a folder above its own).
    """
    root = root or source_root(path)
    label = label or root.location.name
    if root.kind == "jsonl":
        yield from read_jsonl(root.location, label)
    elif root.only is not None:
        file_path = root.location / root.only
        if not file_path.exists():
            yield SkippedDocument(str(path), "no such file or folder")
        elif format_for(file_path) is None:
            yield SkippedDocument(str(path), f"unsupported file type {file_path.suffix or '(none)'}")
        else:
            yield file_document(file_path, f"{label}/{root.only}", label, max_file_bytes)
    else:
        yield from walk_folder(root.location, label, include, exclude, max_file_bytes, follow_external_symlinks)


def resolve_source(store: Store, target: Collection, path: Path) -> tuple[SourceRoot, str]:
    """How ``path`` is understood in ``target`` (a file as part of a folder ingested before), and its label."""
    root = source_root(path)
    if root.kind == "file":  # part of a folder ingested before: the same key as when that folder is ingested
        above = store.registered_folder(target, Path(path).resolve())
        root = source_root(path, above[0]) if above is not None else root
    return root, store.source_label(target, str(root.location), root.parts)


def count_candidates(path: Path, include: list[str] | None, exclude: list[str] | None) -> int | None:
    """How many documents ``discover`` will yield, cheaply (names only), for progress; None if unknown."""
    root = source_root(path)
    if root.kind != "folder":
        return 1 if root.kind == "file" else None
    return sum(1 for _ in candidate_files(root.location, include, exclude, False))


def walk_folder(
    root: Path,
    label: str,
    include: list[str] | None,
    exclude: list[str] | None,
    max_file_bytes: int,
    follow_external_symlinks: bool,
) -> Iterator[Found]:
    """Supported files below ``root`` in sorted order; hidden entries and symlink loops are skipped."""
    for file_path, relative in candidate_files(root, include, exclude, follow_external_symlinks, report=True):
        if file_path is None:
            yield SkippedDocument(relative, "symlink points outside the ingested folder")
        else:
            yield file_document(file_path, f"{label}/{relative}", label, max_file_bytes)


def candidate_files(
    root: Path, include: list[str] | None, exclude: list[str] | None, follow_external: bool, report: bool = False
) -> Iterator[tuple[Path | None, str]]:
    """(path, relative path) of supported files; (None, relative) for links leading outside, if ``report``."""
    root = root.resolve()
    seen_dirs: set[tuple[int, int]] = set()
    rules = IgnoreRules(root)  # .gitignore and .searchignore files, read as the walk enters their folders
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        current = Path(dirpath)
        info = current.stat()
        if (info.st_dev, info.st_ino) in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add((info.st_dev, info.st_ino))
        rules.add_folder(current)
        here = current.relative_to(root).as_posix()
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and _inside(current / d, root, follow_external)
            and not rules.ignored(d if here == "." else f"{here}/{d}", is_dir=True)
        )  # fmt: skip
        for name in sorted(filenames):
            file_path = current / name
            relative = file_path.relative_to(root).as_posix()
            if name.startswith(".") or not _selected(relative, include, exclude) or format_for(file_path) is None:
                continue
            if rules.ignored(relative):
                continue
            if not _inside(file_path, root, follow_external):
                if report:
                    yield None, relative
                continue
            yield file_path, relative


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


def file_document(path: Path, key: str, source: str, max_file_bytes: int) -> Found:
    """A file as a document: checked and hashed now (streamed), read again only if it must be parsed."""
    fmt = format_for(path)
    if fmt is None:
        return SkippedDocument(str(path), f"unsupported file type {path.suffix or '(none)'}")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return SkippedDocument(str(path), "not a regular file (a FIFO, socket or device); nothing was read")
        if info.st_size > max_file_bytes:
            return SkippedDocument(str(path), oversize_reason(info.st_size, max_file_bytes))
        content_hash, head = hash_file(path)
    except OSError as exc:
        return SkippedDocument(str(path), f"unreadable: {exc.strerror or exc}")
    if fmt != "pdf" and looks_binary(head):
        return SkippedDocument(str(path), "binary content (NUL bytes), not text")
    document = SourceDocument(
        key=key,
        source=source,
        path=str(path),
        content_hash=content_hash,
        load=_never,
        metadata={"format": fmt},
        movable=True,
    )
    document.load = lambda: _load_file(document, path, fmt, max_file_bytes)
    return document


def oversize_reason(size: int, limit: int) -> str:
    readable = f" ({limit / 2**20:g} MiB)" if limit >= 2**20 else ""
    return f"file is {size:,} bytes, over the {limit:,}-byte{readable} limit; raise SEARCHSVC_MAX_FILE_BYTES to take it"


def hash_file(path: Path) -> tuple[str, bytes]:
    """SHA-256 of a file read in blocks, and its first bytes (to sniff binary content)."""
    digest = hashlib.sha256()
    head = b""
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            if not head:
                head = block[:SNIFF_BYTES]
            digest.update(block)
    return digest.hexdigest(), head


def _load_file(document: SourceDocument, path: Path, fmt: str, max_file_bytes: int) -> ParsedDocument:
    """Read and parse the file now; if it changed since it was hashed, what is parsed is what is recorded."""
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            raise SourceUnavailable(oversize_reason(size, max_file_bytes))
        data = path.read_bytes()
    except OSError as exc:
        raise SourceUnavailable(f"unreadable: {exc.strerror or exc}") from exc
    document.content_hash = hashlib.sha256(data).hexdigest()
    return parse_bytes(data, fmt)


def _never() -> ParsedDocument:
    raise AssertionError("replaced right after construction")


def read_jsonl(path: Path, source: str | None = None) -> Iterator[Found]:
    """Records ``{"id"|"_id", "text", "title"?, "metadata"?}``, one per line; bad lines are reported."""
    source = source or path.name
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        yield SkippedDocument(str(path), f"unreadable: {exc.strerror or exc}")
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield parse_record_line(line, f"{path}:{number}", source, str(path))


def parse_record_line(line: str, where: str, source: str, path: str) -> Found:
    """One JSONL line as a document, or the reason it cannot be one (at ``where``)."""
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
