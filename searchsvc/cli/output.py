"""How the CLI talks: rich tables for people, JSON for scripts, one line on failure."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@dataclass
class Output:
    """Chooses between human output (rich, on stdout) and ``--json``."""

    json_mode: bool

    def __post_init__(self) -> None:
        self.console = Console(soft_wrap=True)
        self.status_console = Console(stderr=True, soft_wrap=True)

    def data(self, payload: Any) -> None:
        """Print the command's result as JSON (json mode only)."""
        sys.stdout.write(json.dumps(payload, indent=2, default=_json_value, ensure_ascii=False) + "\n")

    def note(self, message: str) -> None:
        """A status line for people; silent with --json so stdout stays machine-readable."""
        if not self.json_mode:
            self.status_console.print(message, highlight=False)


def _json_value(value: Any) -> str:
    """Dates as ISO 8601 (RFC 3339 with a zone, as the HTTP API writes them); anything else as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def document_progress(out: Output, label: str, detail: str) -> Progress:
    """A progress bar of documents on stderr (none with --json): ``label`` before the bar, ``detail`` after
    the count; both are rich format strings over the task's fields."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(detail),
        TimeElapsedColumn(),
        console=out.status_console,
        disable=out.json_mode,
        transient=True,
    )


def fail(message: str, code: str, exit_code: int, json_mode: bool) -> int:
    first_line = " ".join(message.split())
    sys.stderr.write(f"error: {first_line}\n")
    if json_mode:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": first_line}}) + "\n")
    return exit_code
