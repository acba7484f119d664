"""Sources: what is walked, what is skipped and why, and JSONL records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest.document import SkippedDocument, SourceDocument
from ingest.sources import discover


def _split(found) -> tuple[dict[str, SourceDocument], list[SkippedDocument]]:  # type: ignore[no-untyped-def]
    items = list(found)
    docs = {d.key: d for d in items if isinstance(d, SourceDocument)}
    return docs, [s for s in items if isinstance(s, SkippedDocument)]


def test_folder_walk_skips_hidden_loops_binaries_and_outside_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\ntext")
    (root / "sub" / "b.txt").write_text("b text")
    (root / ".hidden.md").write_text("secret")
    (root / ".git").mkdir()
    (root / ".git" / "c.md").write_text("git internals")
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    outside = tmp_path / "outside.md"
    outside.write_text("# Outside")
    (root / "link.md").symlink_to(outside)
    docs, skipped = _split(discover(root))
    assert set(docs) == {"root/a.md", "root/sub/b.txt"}
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "binary" in reasons["binary.txt"]
    assert "outside" in reasons["link.md"]


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    for name in ("keep.md", "drop.md", "notes.txt"):
        (tmp_path / name).write_text(f"# {name}")
    docs, _ = _split(discover(tmp_path, include=["*.md"], exclude=["drop*"]))
    assert [Path(k).name for k in docs] == ["keep.md"]


def test_oversized_files_are_refused_with_the_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 2000)
    _, skipped = _split(discover(tmp_path, max_file_bytes=1000))
    assert "1000-byte limit" in skipped[0].reason


def test_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "locked.md"
    path.write_text("# Locked")
    path.chmod(0)
    try:
        docs, skipped = _split(discover(tmp_path))
        if os.geteuid() == 0:  # root reads anything
            assert len(docs) == 1
        else:
            assert "unreadable" in skipped[0].reason
    finally:
        path.chmod(0o644)


def test_jsonl_records_in_our_shape_and_beir_shape_with_bad_lines_reported(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    lines = [
        json.dumps({"id": "r1", "text": "first record", "metadata": {"year": 2020}}),
        json.dumps({"_id": "4983", "title": "BEIR title", "text": "BEIR abstract"}),
        "{not json",
        json.dumps({"id": "r3"}),
        json.dumps(["not", "an", "object"]),
        "",
    ]
    path.write_text("\n".join(lines))
    docs, skipped = _split(discover(path))
    assert set(docs) == {"r1", "4983"}
    assert docs["r1"].metadata == {"year": 2020} and docs["4983"].title == "BEIR title"
    assert [s.path.rsplit(":", 1)[1] for s in skipped] == ["3", "4", "5"]
    assert docs["4983"].load().text == "BEIR abstract"


def test_content_hash_changes_with_content_only(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("same")
    first, _ = _split(discover(tmp_path))
    (tmp_path / "a.md").write_text("same")
    second, _ = _split(discover(tmp_path))
    (tmp_path / "a.md").write_text("different")
    third, _ = _split(discover(tmp_path))
    key = next(iter(first))
    assert first[key].content_hash == second[key].content_hash != third[key].content_hash
