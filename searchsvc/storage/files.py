"""The ``uploaded_files`` table: files of the Files API, listed with OpenAI's cursor pagination."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, undefer

from searchsvc.errors import NotFoundError
from searchsvc.storage.cursor_pages import Page, paginate
from searchsvc.storage.schema import UploadedFile


def add(session: Session, filename: str, purpose: str, fmt: str, content: bytes) -> UploadedFile:
    row = UploadedFile(
        id=f"file-{secrets.token_hex(12)}",
        filename=filename,
        purpose=purpose,
        format=fmt,
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=int(time.time()),
        content=content,
    )
    session.add(row)
    session.commit()
    return row


def get(session: Session, file_id: str, with_content: bool = False) -> UploadedFile:
    query = select(UploadedFile).where(UploadedFile.id == file_id)
    if with_content:
        query = query.options(undefer(UploadedFile.content))
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"no file {file_id!r}; GET /v1/files lists the uploaded files")
    return row


def remove(session: Session, file_id: str) -> None:
    get(session, file_id)
    session.execute(delete(UploadedFile).where(UploadedFile.id == file_id))
    session.commit()


def listed(session: Session, page: Page, purpose: str | None = None) -> tuple[list[UploadedFile], bool]:
    """A page of files and whether more follow beyond it."""
    query = select(UploadedFile)
    if purpose is not None:
        query = query.where(UploadedFile.purpose == purpose)
    return paginate(session, query, UploadedFile.seq, UploadedFile.id, page)


def formats(session: Session, file_ids: list[str]) -> dict[str, str]:
    """The format of each of ``file_ids`` that exists (the ids missing from the answer do not)."""
    rows = session.execute(select(UploadedFile.id, UploadedFile.format).where(UploadedFile.id.in_(file_ids)))
    return {file_id: fmt for file_id, fmt in rows}
