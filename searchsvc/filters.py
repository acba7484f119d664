"""Metadata filters: a small JSON language compiled to one SQL condition.

    {"source": "docs", "year": {"$gte": 2019, "$lt": 2022}, "lang": {"$in": ["en", "fr"]},
     "published": {"$gte": "2024-01-01"}}

Keys ``key``, ``source``, ``path``, ``title`` and ``document_id`` are document fields;
``page`` is a chunk field; any other key (or ``metadata.<key>``) is looked up in the chunk's
metadata, then the document's. Operators: ``$eq`` (the default for a bare value), ``$ne``,
``$in``, ``$nin``, ``$gt``, ``$gte``, ``$lt``, ``$lte``. Ranges compare numbers as numbers
and strings (ISO dates such as ``2024-05-01``) as text. ``{"$and": [filter, ...]}`` and
``{"$or": [filter, ...]}`` combine whole filters (nested up to four deep), e.g.
``{"$or": [{"year": {"$lt": 2000}}, {"lang": "en"}]}``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true

from searchsvc.errors import InvalidInputError
from searchsvc.storage.json_fields import JsonValue
from searchsvc.storage.schema import Chunk, Document

DOCUMENT_FIELDS = {
    "key": Document.key,
    "source": Document.source,
    "path": Document.path,
    "title": Document.title,
    "document_id": Document.id,
}
CHUNK_FIELDS = {"page": Chunk.page}
FIELD_TYPES = {"key": str, "source": str, "path": str, "title": str, "document_id": int, "page": int}
OPERATORS = {"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"}
MAX_CONDITIONS = 32
MAX_DEPTH = 4
COMBINERS = ("$and", "$or")
MAX_IN_VALUES = 1000
Scalar = str | int | float | bool


def compile_filter(spec: dict[str, Any] | None, depth: int = 0) -> ColumnElement[bool]:
    """One SQL condition over chunks joined to documents; InvalidInputError says what is wrong."""
    if not spec:
        return true()
    if not isinstance(spec, dict):
        raise InvalidInputError("filter must be a JSON object of field: condition")
    if len(spec) > MAX_CONDITIONS:
        raise InvalidInputError(f"filter has {len(spec)} fields; at most {MAX_CONDITIONS} are allowed")
    return and_(*(_entry(field, condition, depth) for field, condition in spec.items()))


def _entry(field: str, condition: Any, depth: int) -> ColumnElement[bool]:
    if field not in COMBINERS:
        return _field_condition(field, condition)
    if depth >= MAX_DEPTH:
        raise InvalidInputError(f"filters nest {field} at most {MAX_DEPTH} deep")
    if not isinstance(condition, list) or not 1 <= len(condition) <= MAX_CONDITIONS:
        raise InvalidInputError(f"{field} takes a list of 1 to {MAX_CONDITIONS} filters")
    if not all(isinstance(item, dict) and item for item in condition):
        raise InvalidInputError(f"each filter in {field} must be a non-empty JSON object")
    parts = [compile_filter(item, depth + 1) for item in condition]
    return and_(*parts) if field == "$and" else or_(*parts)


def _field_condition(field: str, condition: Any) -> ColumnElement[bool]:
    if not isinstance(field, str) or not field or len(field) > 128 or '"' in field or "\\" in field:
        raise InvalidInputError(
            'filter field names must be non-empty strings of at most 128 characters, without " or \\'
        )
    operators = condition if isinstance(condition, dict) else {"$eq": condition}
    if not operators:
        raise InvalidInputError(f"filter on {field!r} has no operator")
    parts = []
    for op, value in operators.items():
        if op not in OPERATORS:
            raise InvalidInputError(f"unknown filter operator {op!r} on {field!r}; use one of {sorted(OPERATORS)}")
        parts.append(_operator(field, op, value))
    return and_(*parts)


def _operator(field: str, op: str, value: Any) -> ColumnElement[bool]:
    if op in ("$in", "$nin"):
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise InvalidInputError(
                f"{op} on {field!r} needs a list of 1 to {MAX_IN_VALUES:,} values, got "
                f"{len(value) if isinstance(value, list) else type(value).__name__}"
            )
        for item in value:
            _check_scalar(field, op, item)
        return _membership(field, value, negate=op == "$nin")
    _check_scalar(field, op, value)
    if op in ("$gt", "$gte", "$lt", "$lte") and isinstance(value, bool):
        raise InvalidInputError(f"{op} on {field!r} needs a number or a string, not a boolean")
    column = _column(field, value)
    return {
        "$eq": lambda: column == value,
        "$ne": lambda: or_(column != value, column.is_(None)),
        "$gt": lambda: column > value,
        "$gte": lambda: column >= value,
        "$lt": lambda: column < value,
        "$lte": lambda: column <= value,
    }[op]()


def _membership(field: str, values: list[Scalar], negate: bool) -> ColumnElement[bool]:
    """``IN (...)`` per value type (one bound list each), never a chain of ORs: SQLite refuses
    expression trees deeper than 1,000, and IN is one node however long the list."""
    by_type: dict[type, list[Scalar]] = {}
    for item in values:
        kind = bool if isinstance(item, bool) else float if isinstance(item, int | float) else str
        if item not in by_type.setdefault(kind, []):
            by_type[kind].append(item)
    parts = [_column(field, items[0]).in_(items) for items in by_type.values()]
    if not negate:
        return or_(*parts) if len(parts) > 1 else parts[0]
    # Not in any of the lists; a NULL (absent, or a value of another type) counts as "not in".
    return not_(or_(*(func.coalesce(part, false()) for part in parts)))


def _check_scalar(field: str, op: str, value: Any) -> None:
    if not isinstance(value, Scalar) or (isinstance(value, str) and len(value) > 1024):
        raise InvalidInputError(f"{op} on {field!r} needs a string (up to 1024 characters), number or boolean")
    wanted = FIELD_TYPES.get(field)
    if wanted is not None and (isinstance(value, bool) or not isinstance(value, wanted)):
        raise InvalidInputError(f"{op} on {field!r} compares {wanted.__name__} values, got {value!r}")


def _column(field: str, value: Scalar) -> Any:
    """The SQL expression for a field, typed after the value it is compared with."""
    if field in DOCUMENT_FIELDS:
        return DOCUMENT_FIELDS[field]
    if field in CHUNK_FIELDS:
        return CHUNK_FIELDS[field]
    key = field.removeprefix("metadata.")
    kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"
    chunk_value, doc_value = (
        JsonValue(Chunk.__table__.c.metadata, key, kind),
        JsonValue(Document.__table__.c.metadata, key, kind),
    )
    return func.coalesce(chunk_value, doc_value)
