"""OpenAI's cursor pagination (``after``, ``before``, ``limit``, ``order``) over any table with an increasing
``seq`` (creation order) and a public ``id``, the one place listings of the OpenAI-compatible routes page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from searchsvc.errors import NotFoundError


class Listed(Protocol):
    seq: Any
    id: Any


@dataclass(frozen=True)
class Page:
    """One page of a listing: ``after``/``before`` name an item's id, ``order`` is by creation."""

    limit: int
    order: str = "desc"
    after: str | None = None
    before: str | None = None


def paginate(session: Session, query: Select[Any], model: type[Listed], page: Page) -> tuple[list[Any], bool]:
    """A page of ``query``'s rows in ``page.order`` and whether more follow beyond it: after ``after``, or
    the page just before ``before`` (walked from the cursor outwards, then shown in the order asked)."""
    seq: InstrumentedAttribute[int] = model.seq
    descending = page.order == "desc"
    if page.after is not None:
        cursor = _seq(session, model, page.after)
        query = query.where(seq < cursor if descending else seq > cursor)
    if page.before is not None:
        cursor = _seq(session, model, page.before)
        query = query.where(seq > cursor if descending else seq < cursor)
    backwards = page.before is not None and page.after is None
    query = query.order_by(seq.desc() if descending != backwards else seq)
    rows = list(session.scalars(query.limit(page.limit + 1)))
    more, rows = len(rows) > page.limit, rows[: page.limit]
    return (rows[::-1] if backwards else rows), more


def _seq(session: Session, model: type[Listed], item_id: str) -> int:
    found = session.scalar(select(model.seq).where(model.id == item_id))
    if found is None:
        raise NotFoundError(f"the cursor {item_id!r} names nothing in this list (deleted since?); list from the start")
    return int(found)
