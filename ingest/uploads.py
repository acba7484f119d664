"""What an uploaded file may be: its type from its name, checked against its content before it is stored.

Uploads are read in full (they are bounded by SEARCHSVC_MAX_FILE_BYTES), so every check runs at upload
time and a refused file is never stored: a bad JSONL line or a PDF that is not one is reported at once,
with its line or reason, instead of surfacing later as a failed ingestion.
"""

from __future__ import annotations

import posixpath

from ingest.document import ParseError, SkippedDocument
from ingest.parsers import FORMAT_BY_SUFFIX
from ingest.parsers.text import decode_text
from ingest.sources import parse_record_line
from searchsvc.errors import InvalidFileError, UnsupportedFileError

UPLOAD_FORMATS = {**FORMAT_BY_SUFFIX, ".jsonl": "jsonl"}
MEDIA_TYPES = {
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "jsonl": "application/jsonl",
}
SUPPORTED = "Markdown (.md), text (.txt, .rst), HTML (.html), PDF (.pdf) or JSONL records (.jsonl)"
MAX_FILENAME = 512


def upload_name(filename: str | None) -> str:
    """The file's own name (any folders a client sent are dropped), or a clear error."""
    name = posixpath.basename((filename or "").replace("\\", "/")).strip()
    if not name:
        raise InvalidFileError("the upload has no file name: send the file as the multipart field 'file' with one")
    if len(name) > MAX_FILENAME:
        raise InvalidFileError(f"the file name is {len(name):,} characters, over the {MAX_FILENAME} allowed")
    return name


def upload_format(filename: str) -> str:
    """The format a file name stands for, or UnsupportedFileError."""
    suffix = posixpath.splitext(filename)[1].lower()
    fmt = UPLOAD_FORMATS.get(suffix)
    if fmt is None:
        kind = suffix or "(no suffix)"
        raise UnsupportedFileError(f"unsupported file type {kind} in {filename!r}: upload {SUPPORTED}")
    return fmt


def check_content(filename: str, fmt: str, data: bytes) -> None:
    """Refuse content that is not what the name says (InvalidFileError, saying why and where)."""
    if not data.strip():
        raise InvalidFileError(f"{filename} is empty")
    if fmt == "pdf":
        if not data.lstrip()[:5] == b"%PDF-":
            raise InvalidFileError(f"{filename} is not a PDF: it does not start with %PDF-")
        return
    try:
        text = decode_text(data)
    except ParseError as exc:
        raise InvalidFileError(f"{filename}: {exc}") from None
    if fmt == "jsonl":
        _check_records(filename, text)


def _check_records(filename: str, text: str) -> None:
    """Every non-blank line must be a record ``{"id", "text", "title"?, "metadata"?}``."""
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        found = parse_record_line(line, f"{filename} line {number}", filename, filename)
        if isinstance(found, SkippedDocument):
            advice = "every line must be a JSON record with an id and a text"
            raise InvalidFileError(f"{found.path}: {found.reason}; {advice}")
        if found.key in seen:
            raise InvalidFileError(f"{filename} line {number}: the id {found.key!r} appears twice")
        seen.add(found.key)
    if not seen:
        raise InvalidFileError(f"{filename} holds no records")
