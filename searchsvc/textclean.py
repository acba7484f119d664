"""Text that every store and tokenizer accepts: no lone surrogates, no NUL characters."""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """Replace NUL and lone UTF-16 surrogates (which UTF-8, PostgreSQL and tokenizers reject) with U+FFFD.

    One character becomes one character, so offsets computed on the cleaned text stay valid.
    """
    return UNSTORABLE.sub(REPLACEMENT, text)


def clean_json(value: Any) -> Any:
    """``clean_text`` applied to every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value
