"""Request and response shapes of the OpenAI-compatible routes, as the official openai-python SDK
(``types/file_object.py``, ``types/vector_store*.py``) reads and writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

Purpose = Literal["assistants", "user_data"]
Order = Literal["asc", "desc"]
ItemId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


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


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
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
