"""The Files API of OpenAI (``client.files``): upload, list, read, download and delete files, which
vector stores then ingest. Files are checked at upload (type by name, content by sniffing) and kept in SQL."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ingest.uploads import MEDIA_TYPES, check_content, upload_format, upload_name
from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import SvcDep
from searchsvc.api.openai_models import FileDeleted, FileList, FileObject, ItemId, Order, Purpose, list_body
from searchsvc.api.responses import ERRORS
from searchsvc.errors import InvalidInputError, SearchsvcError
from searchsvc.storage import files
from searchsvc.storage.cursor_pages import Page
from searchsvc.storage.schema import UploadedFile
from searchsvc.storage.vector_stores import stores_holding
from searchsvc.vector_stores.files import remove_file

router = APIRouter(prefix="/v1/files", tags=["files (OpenAI)"], responses=ERRORS)

FileId = Annotated[str, Path(pattern=r"^file-[A-Za-z0-9]{1,60}$", description="A file's id, as upload returned it.")]
PURPOSES = ("assistants", "user_data")


class FileTooLargeError(SearchsvcError):
    http_status = 413
    code = "too_large"


def file_json(row: UploadedFile) -> dict[str, Any]:
    return FileObject(
        id=row.id, bytes=row.bytes, created_at=row.created_at, filename=row.filename, purpose=row.purpose
    ).model_dump()


@router.post("", dependencies=WRITE, summary="Upload a file", response_model=FileObject)
async def upload_file(
    svc: SvcDep,
    file: Annotated[UploadFile, File(description="Markdown, text, HTML, PDF or JSONL records.")],
    purpose: Annotated[str, Form(description="'assistants' or 'user_data': files for vector stores.")],
) -> Any:
    """Checked before it is stored: its type by its name's suffix, its content by sniffing (text that
    decodes, a PDF that starts as one, JSONL whose every line is a record with an id and a text). At most
    SEARCHSVC_MAX_FILE_BYTES (413 beyond)."""
    if purpose not in PURPOSES:
        raise InvalidInputError(f"purpose {purpose!r} is not offered here: use 'assistants' or 'user_data'").at(
            "purpose"
        )
    limit = svc.settings.max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(
            f"the file is over the {limit:,}-byte limit (SEARCHSVC_MAX_FILE_BYTES): upload a smaller file"
        ).at("file")

    def store() -> dict[str, Any]:
        name = upload_name(file.filename)
        fmt = upload_format(name)
        check_content(name, fmt, data)
        with svc.store.session() as session:
            return file_json(files.add(session, name, purpose, fmt, data))

    try:
        return await run_in_threadpool(store)
    except InvalidInputError as exc:
        raise exc.at(exc.param or "file") from None


@router.get("", dependencies=READ, summary="List uploaded files", response_model=FileList)
async def list_files(
    svc: SvcDep,
    purpose: Purpose | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Order = "desc",
    after: ItemId | None = None,
    before: ItemId | None = None,
) -> Any:
    """Newest first by default; page with ``after`` (the last id of a page) while ``has_more``."""

    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            rows, more = files.listed(session, Page(limit, order, after, before), purpose)
            return list_body([file_json(row) for row in rows], more)

    return await run_in_threadpool(run)


@router.get("/{file_id}", dependencies=READ, summary="Describe a file", response_model=FileObject)
async def get_file(file_id: FileId, svc: SvcDep) -> Any:
    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            return file_json(files.get(session, file_id))

    return await run_in_threadpool(run)


@router.get(
    "/{file_id}/content",
    dependencies=READ,
    summary="Download a file's content, byte for byte as uploaded",
    response_class=Response,
    responses={200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))}}},
)
async def file_content(file_id: FileId, svc: SvcDep) -> Response:
    def run() -> UploadedFile:
        with svc.store.session() as session:
            return files.get(session, file_id, with_content=True)

    row = await run_in_threadpool(run)
    disposition = f"attachment; filename*=UTF-8''{_quoted(row.filename)}"
    return Response(row.content, media_type=MEDIA_TYPES[row.format], headers={"Content-Disposition": disposition})


@router.delete("/{file_id}", dependencies=WRITE, summary="Delete a file", response_model=FileDeleted)
async def delete_file(file_id: FileId, svc: SvcDep) -> Any:
    """The file and what it became in every vector store it was added to (gone from their search)."""

    def run() -> dict[str, Any]:
        with svc.store.session() as session:
            files.get(session, file_id)
            holding = [collection.name for collection in stores_holding(session, file_id)]
        for name in holding:  # gone from every vector store's search first, then gone
            remove_file(svc.store, name, file_id)
        with svc.store.session() as session:
            files.remove(session, file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    return await run_in_threadpool(run)


def _quoted(filename: str) -> str:
    return quote(filename, safe="")
