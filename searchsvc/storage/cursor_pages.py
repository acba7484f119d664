"""OpenAI's cursor pagination (``after``, ``before``, ``limit``, ``order``) over any table with an increasing
column (creation order) and a public id column: the one place listings of the OpenAI-compatible routes page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from searchsvc.errors import NotFoundError


@dataclass(frozen=True)
class Page:
    """One page of a listing: ``after``/``before`` name an item's id, ``order`` is by creation."""

    limit: int
    order: str = "desc"
    after: str | None = None
    before: str | None = None


def paginate(
    session: Session,
    query: Select[Any],
    seq: InstrumentedAttribute[int],
    key: InstrumentedAttribute[str],
    page: Page,
    within: ColumnElement[bool] | None = None,
    rows: bool = False,
) -> tuple[list[Any], bool]:
    """A page of ``query``'s rows in ``page.order`` (of ``seq``) and whether more follow beyond it: after
    ``after``, or the page just before ``before`` (cursors are ``key`` values; walked from the cursor
    outwards, then shown in the order asked; ``within`` scopes them when keys repeat across lists). Items
    are the first entity of each row, or whole rows with ``rows``."""
    descending = page.order == "desc"
    if page.after is not None:
        cursor = _seq(session, seq, key, page.after, within)
        query = query.where(seq < cursor if descending else seq > cursor)
    if page.before is not None:
        cursor = _seq(session, seq, key, page.before, within)
        query = query.where(seq > cursor if descending else seq < cursor)
    backwards = page.before is not None and page.after is None
    query = query.order_by(seq.desc() if descending != backwards else seq)
    limited = query.limit(page.limit + 1)
    items: list[Any] = list(session.execute(limited).all() if rows else session.scalars(limited))
    more, items = len(items) > page.limit, items[: page.limit]
    return (items[::-1] if backwards else items), more


def _seq(
    session: Session,
    seq: InstrumentedAttribute[int],
    key: InstrumentedAttribute[str],
    item_id: str,
    within: ColumnElement[bool] | None,
) -> int:
    query = select(seq).where(key == item_id)
    found = session.scalar(query if within is None else query.where(within))
    if found is None:
        raise NotFoundError(f"the cursor {item_id!r} names nothing in this list (deleted since?); list from the start")
    return int(found)
