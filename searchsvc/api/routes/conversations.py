"""Conversations: OpenAI's Conversations API (``conv_...`` threads and their message items) over the same
threads ``/v1/ask`` keeps with ``conversation_id``; ``GET /v1/conversations/{id}`` answers both shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from searchsvc.answering.conversation import ConversationMemory
from searchsvc.api.auth import READ, WRITE
from searchsvc.api.deps import SvcDep
from searchsvc.api.responses import ERRORS, ConversationOut
from searchsvc.textclean import clean_text

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], responses=ERRORS)
ThreadId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ItemId = Annotated[str, Path(pattern=r"^msg_[0-9]{1,18}$")]


class MessageItem(BaseModel):
    """A message item: its text (a string, or ``input_text``/``output_text`` parts)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[dict[str, Any]] = Field(description="Text, or input_text/output_text parts.")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("input_text", "output_text"))

    @field_validator("content")
    @classmethod
    def _text_only(cls, value: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(value, list) and any(p.get("type") not in ("input_text", "output_text") for p in value):
            raise ValueError("content parts must be input_text or output_text")
        return value


Metadata = Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)]


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[MessageItem] = Field(default_factory=list, max_length=20)
    metadata: Metadata | None = None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: Metadata


class ItemsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[MessageItem] = Field(min_length=1, max_length=20)


class ConversationObject(BaseModel):
    id: str
    object: Literal["conversation"]
    created_at: int = Field(description="Unix seconds.")
    metadata: dict[str, str]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"]
    deleted: bool


class ItemPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["input_text", "output_text"]
    text: str


class ItemOut(BaseModel):
    type: Literal["message"]
    id: str = Field(description="msg_<n>")
    status: Literal["completed"]
    role: str
    content: list[ItemPart]


class ItemList(BaseModel):
    object: Literal["list"]
    data: list[ItemOut]
    first_id: str | None
    last_id: str | None
    has_more: bool


def _stored(items: list[MessageItem]) -> list[dict[str, str]]:
    """The items' texts as they can be stored (NUL and lone surrogates replaced, as for every stored text)."""
    return [{"role": item.role, "content": clean_text(item.text())} for item in items]


def _metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    return None if metadata is None else {clean_text(k): clean_text(v) for k, v in metadata.items()}


@router.post("", dependencies=WRITE, summary="Create a conversation", response_model=ConversationObject)
async def create_conversation(body: ConversationCreate, svc: SvcDep) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).create, _metadata(body.metadata), _stored(body.items))


@router.get("/{conversation_id}", dependencies=READ, summary="A conversation", response_model=ConversationOut)
async def get_conversation(conversation_id: ThreadId, svc: SvcDep) -> Any:
    """OpenAI's conversation object, with searchsvc's `collection` and `messages` (standalone queries, citations)."""
    return await run_in_threadpool(ConversationMemory(svc.store).transcript, conversation_id)


@router.post(
    "/{conversation_id}",
    dependencies=WRITE,
    summary="Update a conversation's metadata",
    response_model=ConversationObject,
)
async def update_conversation(conversation_id: ThreadId, body: ConversationUpdate, svc: SvcDep) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).update, conversation_id, _metadata(body.metadata))


@router.delete(
    "/{conversation_id}", dependencies=WRITE, summary="Delete a conversation", response_model=ConversationDeleted
)
async def delete_conversation(conversation_id: ThreadId, svc: SvcDep) -> Any:
    await run_in_threadpool(ConversationMemory(svc.store).delete, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.get(
    "/{conversation_id}/items",
    dependencies=READ,
    summary="A conversation's items, a page at a time",
    response_model=ItemList,
)
async def list_items(
    conversation_id: ThreadId,
    svc: SvcDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(pattern=r"^msg_[0-9]{1,18}$")] = None,
) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).items, conversation_id, limit, order, after)


@router.post(
    "/{conversation_id}/items", dependencies=WRITE, summary="Add items to a conversation", response_model=ItemList
)
async def add_items(conversation_id: ThreadId, body: ItemsCreate, svc: SvcDep) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).add_items, conversation_id, _stored(body.items))


@router.get("/{conversation_id}/items/{item_id}", dependencies=READ, summary="One item", response_model=ItemOut)
async def get_item(conversation_id: ThreadId, item_id: ItemId, svc: SvcDep) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).item, conversation_id, item_id)


@router.delete(
    "/{conversation_id}/items/{item_id}",
    dependencies=WRITE,
    summary="Delete one item",
    response_model=ConversationObject,
)
async def delete_item(conversation_id: ThreadId, item_id: ItemId, svc: SvcDep) -> Any:
    return await run_in_threadpool(ConversationMemory(svc.store).delete_item, conversation_id, item_id)
