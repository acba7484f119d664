"""What an ingestion run reports, and how it tells a watcher how far it has come."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


class Progress(Protocol):
    """Told as a run goes: documents (the total may be unknown), and chunks and tokens as they are embedded."""

    def documents(self, total: int | None) -> None: ...
    def advance(self, documents: int) -> None: ...
    def embedded(self, chunks: int, tokens: int) -> None: ...


class NoProgress:
    def documents(self, total: int | None) -> None:
        pass

    def advance(self, documents: int) -> None:
        pass

    def embedded(self, chunks: int, tokens: int) -> None:
        pass


@dataclass
class IngestReport:
    """Counts of one run. ``skipped`` lists what was found but not indexed, each with its reason, once:
    an unchanged file that yielded no text in an earlier run counts in ``unchanged`` and ``skipped_before``."""

    collection: str
    provider: str
    model: str
    added: int = 0
    changed: int = 0
    renamed: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped_before: int = 0
    chunks: int = 0
    chunks_cached: int = 0
    tokens_embedded: int = 0
    embedding_requests: int = 0
    batches_split: int = 0  # requests split in two and sent again: too large for the API, or no answer in time
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    renames: list[dict[str, object]] = field(default_factory=list)  # {"from", "to", "changed"}: files that moved
    failed: list[dict[str, str]] = field(default_factory=list)  # documents not written: the API refused a chunk
    status: dict[str, str] = field(default_factory=dict, repr=False)  # key -> added/changed/unchanged/skipped

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("status")
        return data

    def skip(self, key: str, path: str | None, reason: str) -> None:
        self.skipped.append({"path": path or key, "reason": reason})
        self.status.setdefault(key, "skipped")

    def count(self, key: str, status: str) -> None:
        """Count one document as added, changed or unchanged."""
        setattr(self, status, getattr(self, status) + 1)
        self.status[key] = status

    def fail(self, key: str, path: str | None, reason: str) -> None:
        self.failed.append({"path": path or key, "reason": reason})
        self.status[key] = "failed"

    def problems(self) -> list[dict[str, str]]:
        """What was found and not indexed, each with its reason: skips, then failures."""
        return self.skipped + [{"path": f["path"], "reason": f"failed: {f['reason']}"} for f in self.failed]

    def rename(self, key: str, old_path: str, new_path: str | None, changed: bool) -> None:
        """Count one document whose file moved (and, when ``changed``, was edited too)."""
        self.renamed += 1
        self.renames.append({"from": old_path, "to": new_path or key, "changed": changed})
        self.status[key] = "renamed"
