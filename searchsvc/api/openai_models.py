"""Request and response shapes of the OpenAI-compatible routes, as the official openai-python SDK
(``types/file_object.py``, ``types/vector_store*.py``) reads and writes them."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from searchsvc.storage.cursor_pages import Page

Item = TypeVar("Item")
Purpose = Literal["assistants", "user_data"]
Order = Literal["asc", "desc"]
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"  # ids of files, vector stores (collection names), batches
ItemId = Annotated[str, Query(pattern=ID_PATTERN)]


def page_params(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Order = "desc",
    after: ItemId | None = None,
    before: ItemId | None = None,
) -> Page:
    """OpenAI's cursor parameters of a list (up to 100 a page, newest first by default)."""
    return Page(limit, order, after, before)


PageParams = Annotated[Page, Depends(page_params)]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int = Field(description="Size of the stored file.")
    created_at: int = Field(description="Unix seconds.")
    filename: str
    purpose: str
    status: Literal["processed"] = Field("processed", description="Checked and stored: ready to add to stores.")
    expires_at: int | None = None
    status_details: str | None = None


class CursorList(BaseModel, Generic[Item]):
    """OpenAI's cursor page: the SDK asks for the next page ``after`` ``last_id`` while ``has_more``."""

    object: Literal["list"] = "list"
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


def list_body(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's cursor page: the SDK asks for the next page ``after`` the last id while ``has_more``."""
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


class FileCounts(BaseModel):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class VectorStoreObject(BaseModel):
    id: str = Field(description="The collection's name: every collection is a vector store.")
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    metadata: dict[str, str]
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    usage_bytes: int
    last_active_at: int
    expires_after: dict[str, Any] | None
    expires_at: int | None


class Deleted(BaseModel):
    id: str
    object: str = Field(description="vector_store.deleted or vector_store.file.deleted")
    deleted: bool


class LastError(BaseModel):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class VectorStoreFileObject(BaseModel):
    id: str = Field(description="The uploaded file's id.")
    object: Literal["vector_store.file"] = "vector_store.file"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: LastError | None
    usage_bytes: int
    attributes: dict[str, str | bool | int | float]
    chunking_strategy: dict[str, Any]


class ContentPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[ContentPart]
    has_more: bool
    next_page: str | None


class SearchResultItem(BaseModel):
    file_id: str
    filename: str
    score: float = Field(description="0..1: the hybrid fusion score over the best it can be (first in both rankings).")
    attributes: dict[str, str | bool | int | float]
    content: list[ContentPart]


class SearchPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResultItem]
    has_more: bool
    next_page: str | None


class FileBatchObject(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts


FileList = CursorList[FileObject]
VectorStoreList = CursorList[VectorStoreObject]
VectorStoreFileList = CursorList[VectorStoreFileObject]
