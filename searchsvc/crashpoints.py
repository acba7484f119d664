"""Fault injection for crash-safety tests: SIGKILL this process at the Nth pass of a named point.

Off unless ``SEARCHSVC_CRASH_AT`` (settings.crash_at) names points, e.g. ``embedded_batch:2``.
Points: ``parsed`` (a document parsed), ``embedded_batch`` (a batch of vectors committed),
``sql_write`` (documents written, transaction not yet committed), ``index_update`` (SQL committed,
index not yet updated), ``index_save`` (new index file written, manifest not yet replaced);
model switches: ``migrated_batch`` (a batch of the new model's vectors committed), ``before_swap``.
"""

from __future__ import annotations

import os
import signal


class Crashpoints:
    def __init__(self, spec: str | None = None) -> None:
        self._targets: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        for item in (spec or "").split(","):
            name, _, count = item.strip().partition(":")
            if name:
                self._targets[name] = int(count or 1)

    def hit(self, name: str) -> None:
        if name not in self._targets:
            return
        self._counts[name] = self._counts.get(name, 0) + 1
        if self._counts[name] == self._targets[name]:
            # Said first, so a test can tell this kill from any other death of the process.
            os.write(2, f"crashpoint {name}:{self._counts[name]} reached\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)


NO_CRASHES = Crashpoints()
