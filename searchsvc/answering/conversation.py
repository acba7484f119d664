"""Conversation memory: the turns of a thread, kept in SQL, read back for follow-up questions."""

from __future__ import annotations

from typing import Any

from searchsvc.errors import NotFoundError
from searchsvc.storage import conversations
from searchsvc.storage.schema import Conversation
from searchsvc.store import Store

HISTORY_MESSAGES = 6  # the turns a follow-up question is rewritten with


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
        """The whole thread, for GET /v1/conversations/{id}."""
        with self.store.session() as session:
            conversation = self._get(session, conversation_id)
            return {
                "id": conversation.id,
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

    @staticmethod
    def _get(session: Any, conversation_id: str) -> Conversation:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id!r}")
        return conversation
