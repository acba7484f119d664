"""Is the model that answered the one asked for? A proxy, a router or llama.cpp (which serves whatever it
loaded) may answer with another model without saying so; its response's ``model`` field gives it away.

Harmless differences are the same model: case, a provider prefix (``openai/gpt-4o``, a llama.cpp file's
folder), a dated snapshot (``gpt-4o-mini-2024-07-18``, ``gpt-4-0613``, ``claude-3-5-sonnet-20241022``,
``…@20241022``), ``-latest`` or ``:latest``, a ``.gguf`` extension. A real difference is logged once per
(requested, answered) pair as a warning of the ``searchsvc.provider`` logger, and reported with the answer.
"""

from __future__ import annotations

import logging
import re
import threading

log = logging.getLogger("searchsvc.provider")
# A snapshot or alias suffix: -2024-07-18, -20240718, @20240718, -0613 (OpenAI's older ones), -latest, :latest.
SNAPSHOT = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})|-latest|:latest)$")
_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


def base_name(model: str) -> str:
    """The model's name without case, provider prefix, extension or snapshot suffix."""
    name = model.strip().lower().rsplit("/", 1)[-1].removesuffix(".gguf")
    while True:
        shorter = SNAPSHOT.sub("", name)
        if shorter == name or not shorter:
            return name
        name = shorter


def same_model(requested: str, answered: str) -> bool:
    return base_name(requested) == base_name(answered)


def substitution(requested: str | None, answered: object) -> dict[str, str] | None:
    """``{"requested", "answered"}`` when the server answered with another model than asked (warned about
    once per pair); None when it is the same model, or the server did not say."""
    if not requested or not isinstance(answered, str) or not answered or same_model(requested, answered):
        return None
    with _lock:
        first = (requested, answered) not in _warned
        _warned.add((requested, answered))
    if first:
        log.warning(
            "asked for the chat model %r, the server answered with %r: a proxy or server substituted its own "
            "model; check the server's model list (GET /v1/models) or SEARCHSVC_CHAT_MODEL",
            requested,
            answered,
            extra={"fields": {"event": "model_substituted", "requested": requested, "answered": answered}},
        )
    return {"requested": requested, "answered": answered}
