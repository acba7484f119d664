"""Where a chunk is, in words a person can follow: file, heading path, then page, lines or characters."""

from __future__ import annotations

from collections.abc import Sequence


def describe_location(
    path: str,
    heading_path: Sequence[str],
    page: int | None,
    line_start: int | None,
    line_end: int | None,
    start_char: int,
    end_char: int,
    separator: str = " | ",
) -> str:
    """``docs/a.md | Install > Homebrew | lines 10-24``; HTML (no source lines) gets character offsets."""
    parts = [path]
    if heading_path:
        parts.append(" > ".join(heading_path))
    if page is not None:
        parts.append(f"page {page}")
    elif line_start is not None:
        parts.append(f"lines {line_start}-{line_end}")
    else:
        parts.append(f"characters {start_char}-{end_char}")
    return separator.join(parts)
