"""Conversation threads kept in SQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from searchsvc.storage.schema import Conversation, ConversationMessage, utcnow


def get_or_create(session: Session, conversation_id: str | None, collection: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id) if conversation_id else None
    if conversation is None:
        conversation = Conversation(id=conversation_id or uuid.uuid4().hex, collection=collection)
        session.add(conversation)
        session.flush()
    elif not conversation.collection:
        conversation.collection = collection  # made by the Conversations API: its first question names it
    return conversation


def messages(session: Session, conversation_id: str, limit: int | None = None) -> list[ConversationMessage]:
    """Messages oldest first (the last ``limit`` when given)."""
    stmt = select(ConversationMessage).where(ConversationMessage.conversation_id == conversation_id)
    rows = list(session.scalars(stmt.order_by(ConversationMessage.id.desc()).limit(limit)))
    return rows[::-1]


def append_turn(
    session: Session,
    conversation: Conversation,
    question: str,
    standalone_query: str,
    answer: str,
    citations: list[dict[str, Any]],
) -> None:
    session.add(
        ConversationMessage(
            conversation_id=conversation.id,
            role="user",
            content=question,
            standalone_query=standalone_query,
            citations=[],
        )
    )
    session.add(
        ConversationMessage(conversation_id=conversation.id, role="assistant", content=answer, citations=citations)
    )
    conversation.updated_at = utcnow()


def create(session: Session, metadata: dict[str, str] | None) -> Conversation:
    """A new conversation of the Conversations API: no collection until a question is asked in it."""
    conversation = Conversation(id="conv_" + uuid.uuid4().hex, collection="", meta=metadata or {})
    session.add(conversation)
    session.flush()
    return conversation


def add_message(session: Session, conversation: Conversation, role: str, content: str) -> ConversationMessage:
    message = ConversationMessage(conversation_id=conversation.id, role=role, content=content, citations=[])
    session.add(message)
    conversation.updated_at = utcnow()
    session.flush()
    return message


def message_page(
    session: Session, conversation_id: str, limit: int, order: str, after: int | None
) -> tuple[list[ConversationMessage], bool]:
    """A page of a conversation's messages in ``order`` of creation, after the message numbered ``after``."""
    stmt = select(ConversationMessage).where(ConversationMessage.conversation_id == conversation_id)
    column = ConversationMessage.id
    if after is not None:
        stmt = stmt.where(column < after if order == "desc" else column > after)
    stmt = stmt.order_by(column.desc() if order == "desc" else column).limit(limit + 1)
    rows = list(session.scalars(stmt))
    return rows[:limit], len(rows) > limit
