"""A typed value read from a JSON column: the value when its JSON type is the one asked for, else NULL.

``{"n": 5}`` compared with a number reads 5; ``{"n": "t0"}`` reads NULL, never 0.0 (SQLite's CAST) or an
error (PostgreSQL's cast): a filter compares numbers with numbers, strings with strings, booleans with
booleans, on both databases alike.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import TypeEngine

SQL_TYPES: dict[str, TypeEngine[Any]] = {"number": Float(), "string": String(), "boolean": Boolean()}
SQLITE_TYPES = {"number": "('integer', 'real')", "string": "('text')", "boolean": "('true', 'false')"}


class JsonValue(ColumnElement[Any]):
    """``column[key]`` as a number, string or boolean (``kind``), NULL when the stored value is of another type."""

    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], key: str, kind: str) -> None:
        self.column = column
        self.key = key
        self.kind = kind
        self.type = SQL_TYPES[kind]


@compiles(JsonValue, "sqlite")
def _sqlite(element: JsonValue, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    path = compiler.render_literal_value("$." + json.dumps(element.key), String())
    return (
        f"CASE WHEN json_type({column}, {path}) IN {SQLITE_TYPES[element.kind]} THEN json_extract({column}, {path}) END"
    )


@compiles(JsonValue, "postgresql")
def _postgresql(element: JsonValue, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    key = compiler.render_literal_value(element.key, String())
    cast = {"number": "::double precision", "string": "", "boolean": "::boolean"}[element.kind]
    return f"CASE WHEN json_typeof({column} -> {key}) = '{element.kind}' THEN ({column} ->> {key}){cast} END"
