"""Sources: what is walked, what is skipped and why, and JSONL records."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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
    (root / "binary.txt").write_bytes(bytes(range(256)) * 16)  # 16 NUL bytes in the first 4 KiB
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
    assert "over the 1,000-byte limit; raise SEARCHSVC_MAX_FILE_BYTES" in skipped[0].reason


def _discover_as_nobody(folder: Path) -> list[list[str]]:
    """Walk ``folder`` in a forked child that gave up root (root reads every file, whatever its mode)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to 'nobody', walk, report, exit without running the parent's cleanup
        status = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            found = [[type(f).__name__, getattr(f, "reason", "")] for f in discover(folder)]
            os.write(write_end, json.dumps(found).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        output = pipe.read()
    assert os.waitpid(pid, 0)[1] == 0
    return json.loads(output)


def test_unreadable_files_are_reported_not_fatal() -> None:
    folder = Path(tempfile.mkdtemp(prefix="searchsvc-unreadable-"))  # not under pytest's root-only tmp
    try:
        folder.chmod(0o755)
        (folder / "open.md").write_text("# Open\n\nreadable")
        locked = folder / "locked.md"
        locked.write_text("# Locked")
        locked.chmod(0)
        if os.geteuid() == 0:
            found = _discover_as_nobody(folder)
        else:
            found = [[type(f).__name__, getattr(f, "reason", "")] for f in discover(folder)]
        assert found[0][0] == "SkippedDocument" and "unreadable: Permission denied" in found[0][1]
        assert found[1][0] == "SourceDocument"
    finally:
        shutil.rmtree(folder)


def test_a_fifo_is_skipped_without_reading_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")  # reading it would wait forever for a writer
    (tmp_path / "real.md").write_text("# Real")
    docs, skipped = _split(discover(tmp_path))
    assert list(docs) == [f"{tmp_path.name}/real.md"]
    assert "not a regular file" in skipped[0].reason


def test_one_nul_byte_is_cleaned_not_refused_and_utf16_with_a_bom_is_text(tmp_path: Path) -> None:
    (tmp_path / "nul.md").write_bytes(b"# Heading\n\nText with a stray \x00 byte inside.\n")
    (tmp_path / "wide.txt").write_bytes("Wide text, UTF-16 with a BOM.\n".encode("utf-16"))
    docs, skipped = _split(discover(tmp_path))
    assert skipped == []
    assert "stray \ufffd byte" in docs[f"{tmp_path.name}/nul.md"].load().text
    assert docs[f"{tmp_path.name}/wide.txt"].load().text.startswith("Wide text, UTF-16")


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
