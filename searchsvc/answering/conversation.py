"""Conversation memory: the turns of a thread, kept in SQL, read back for follow-up questions."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from searchsvc.errors import NotFoundError
from searchsvc.storage import conversations
from searchsvc.storage.schema import Conversation, ConversationMessage
from searchsvc.store import Store

HISTORY_MESSAGES = 6  # the turns a follow-up question is rewritten with
ITEM_PREFIX = "msg_"  # a message's item id: msg_<its number>
MAX_ITEM_NUMBER = 2**31 - 1  # message numbers are 32-bit integers on PostgreSQL


def conversation_object(conversation: Conversation) -> dict[str, Any]:
    """OpenAI's ``conversation`` object."""
    created = conversation.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # stored in UTC; SQLite gives it back without a zone
    return {"id": conversation.id, "object": "conversation", "created_at": int(created.timestamp()) if created else 0,
            "metadata": conversation.meta or {}}  # fmt: skip


def message_item(message: ConversationMessage) -> dict[str, Any]:
    """A stored message as OpenAI's ``message`` item (the user's input text, the assistant's output text)."""
    kind = "output_text" if message.role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": kind, "text": message.content}
    if kind == "output_text":
        part["annotations"] = []
    return {"type": "message", "id": f"{ITEM_PREFIX}{message.id}", "status": "completed", "role": message.role,
            "content": [part]}  # fmt: skip


class ConversationMemory:
    """Reads and writes conversation threads of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def history(self, conversation_id: str | None) -> list[dict[str, str]]:
        """The last messages of a thread as chat messages (none for a new or absent thread)."""
        if not conversation_id:
            return []
        with self.store.session() as session:
            rows = conversations.messages(session, conversation_id, HISTORY_MESSAGES)
            return [{"role": m.role, "content": m.content} for m in rows]

    def remember(
        self, conversation_id: str, collection: str, question: str, query: str, answer: str, citations: list[Any]
    ) -> str:
        """Append a question and its answer to the thread (created when new); returns the thread's id."""
        with self.store.session() as session:
            conversation = conversations.get_or_create(session, conversation_id, collection)
            conversations.append_turn(session, conversation, question, query, answer, citations)
            session.commit()
            return conversation.id

    def transcript(self, conversation_id: str) -> dict[str, Any]:
        """The whole thread, for GET /v1/conversations/{id}: OpenAI's conversation object, and searchsvc's
        collection and messages with it."""
        with self.store.session() as session:
            conversation = self._get(session, conversation_id)
            return {
                **conversation_object(conversation),
                "collection": conversation.collection,
                "messages": [
                    {
                        "role": m.role,
                        "content": m.content,
                        "standalone_query": m.standalone_query,
                        "citations": m.citations,
                        "created_at": m.created_at,
                    }
                    for m in conversations.messages(session, conversation_id)
                ],
            }

    def delete(self, conversation_id: str) -> None:
        with self.store.session() as session:
            session.delete(self._get(session, conversation_id))
            session.commit()

    def create(self, metadata: dict[str, str] | None, items: list[dict[str, str]]) -> dict[str, Any]:
        """A new conversation (the Conversations API), with its first message items."""
        with self.store.session() as session:
            conversation = conversations.create(session, metadata)
            for item in items:
                conversations.add_message(session, conversation, item["role"], item["content"])
            session.commit()
            return conversation_object(conversation)

    def update(self, conversation_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        with self.store.session() as session:
            conversation = self._get(session, conversation_id)
            conversation.meta = metadata
            session.commit()
            return conversation_object(conversation)

    def items(self, conversation_id: str, limit: int, order: str, after: str | None) -> dict[str, Any]:
        """A page of the thread's messages as OpenAI's message items."""
        with self.store.session() as session:
            self._get(session, conversation_id)
            cursor = self._item(session, conversation_id, after).id if after is not None else None
            rows, more = conversations.message_page(session, conversation_id, limit, order, cursor)
            data = [message_item(m) for m in rows]
            return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None, "has_more": more}  # fmt: skip

    def add_items(self, conversation_id: str, items: list[dict[str, str]]) -> dict[str, Any]:
        with self.store.session() as session:
            conversation = self._get(session, conversation_id)
            added = [conversations.add_message(session, conversation, i["role"], i["content"]) for i in items]
            session.commit()
            data = [message_item(m) for m in added]
            return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None, "has_more": False}  # fmt: skip

    def item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        with self.store.session() as session:
            return message_item(self._item(session, conversation_id, item_id))

    def delete_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        """Remove one message; answers the conversation, as OpenAI's API does."""
        with self.store.session() as session:
            session.delete(self._item(session, conversation_id, item_id))
            conversation = self._get(session, conversation_id)
            session.commit()
            return conversation_object(conversation)

    @staticmethod
    def _item(session: Any, conversation_id: str, item_id: str) -> ConversationMessage:
        number = item_id.removeprefix(ITEM_PREFIX)
        in_range = number.isdigit() and int(number) <= MAX_ITEM_NUMBER  # an id past the column's range names nothing
        message = session.get(ConversationMessage, int(number)) if in_range else None
        if message is None or message.conversation_id != conversation_id:
            raise NotFoundError(f"no item {item_id!r} in conversation {conversation_id!r}")
        return message

    @staticmethod
    def _get(session: Any, conversation_id: str) -> Conversation:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id!r}")
        return conversation
