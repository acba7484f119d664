"""The ``responses`` table: responses kept so that a later one can follow them (``previous_response_id``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from searchsvc.errors import InvalidInputError, NotFoundError
from searchsvc.storage.schema import StoredResponse

MAX_CHAIN = 200  # responses followed back from one previous_response_id


def save(session: Session, body: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
    session.add(StoredResponse(id=body["id"], created_at=body["created_at"], body=body, input_items=input_items,
                               previous_response_id=body.get("previous_response_id")))  # fmt: skip
    session.commit()


def get(session: Session, response_id: str) -> StoredResponse:
    row = session.get(StoredResponse, response_id)
    if row is None:
        raise NotFoundError(f"no response {response_id!r}: it was never stored (store: false), or it was deleted")
    return row


def remove(session: Session, response_id: str) -> None:
    get(session, response_id)
    session.execute(delete(StoredResponse).where(StoredResponse.id == response_id))
    session.commit()


def thread(session: Session, response_id: str) -> list[dict[str, Any]]:
    """Every item of the responses that led to ``response_id`` and of it, oldest first: each response's input
    items, then its output."""
    chain: list[StoredResponse] = []
    current: str | None = response_id
    while current is not None:
        if len(chain) == MAX_CHAIN:
            raise InvalidInputError(
                f"previous_response_id: the thread is longer than {MAX_CHAIN} responses; start a conversation instead"
            ).at("previous_response_id")
        try:
            row = get(session, current)
        except NotFoundError as exc:
            raise NotFoundError(f"previous_response_id: {exc}") from exc
        chain.append(row)
        current = row.previous_response_id
    return [item for row in reversed(chain) for item in (*row.input_items, *row.body.get("output", []))]
