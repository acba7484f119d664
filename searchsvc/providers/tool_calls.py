"""Function calls in OpenAI's chat format: read from a reply, put together from streamed pieces (a call's
``id`` and name come first, its arguments in pieces after), and written back into the conversation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from searchsvc.errors import ProviderResponseError


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may not be valid JSON)

    def as_message_part(self) -> dict[str, Any]:
        """The call as an assistant message's ``tool_calls`` entry."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


def parse_tool_calls(message: Any) -> list[ToolCall]:
    """The function calls of a ``chat.completion`` message (none when it has none)."""
    raw = message.get("tool_calls") if isinstance(message, dict) else None
    if not raw:
        return []
    if not isinstance(raw, list):
        raise ProviderResponseError("the chat response's tool_calls is not a list")
    calls = []
    for entry in raw:
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ProviderResponseError(f"a tool call of the chat response has no function name: {entry!r:.200}")
        arguments = function.get("arguments")
        calls.append(
            ToolCall(str(entry.get("id") or ""), function["name"], arguments if isinstance(arguments, str) else "{}")
        )
    return calls


class ToolCallPieces:
    """Streamed tool call deltas, gathered by their ``index`` into whole calls."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def feed(self, pieces: list[dict[str, Any]] | None) -> None:
        for piece in pieces or []:
            part = self._parts.setdefault(
                int(piece.get("index", len(self._parts))), {"id": "", "name": "", "arguments": ""}
            )
            part["id"] = piece.get("id") or part["id"]
            function = piece.get("function") or {}
            part["name"] += function.get("name") or ""
            part["arguments"] += function.get("arguments") or ""

    @property
    def started(self) -> bool:
        """Whether any piece of a call came."""
        return bool(self._parts)

    def calls(self) -> list[ToolCall]:
        """The whole calls, in index order; a call without a name is the provider's fault."""
        calls = []
        for index in sorted(self._parts):
            part = self._parts[index]
            if not part["name"]:
                raise ProviderResponseError(f"the streamed tool call {index} never named its function")
            calls.append(ToolCall(part["id"], part["name"], part["arguments"] or "{}"))
        return calls
