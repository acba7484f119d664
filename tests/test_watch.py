"""`searchsvc ingest FOLDER --watch` keeps a collection in sync with a folder (issue 18, part 8): a real
process watching real file events, against the fake API; .gitignore and .searchignore honoured."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from searchsvc.config import Settings
from searchsvc.storage.schema import Document
from searchsvc.store import Store
from tests.conftest import MODEL, cli_env, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.ingest_lead


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "scratch").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (folder / f"{name}.md").write_text(f"# Note {name}\n\nThe note {name} is about topic{name}.\n")
    (folder / ".gitignore").write_text("draft-*.md\n")
    (folder / ".searchignore").write_text("scratch/\n")
    (folder / "draft-1.md").write_text("# Draft\n\nNot for the index.\n")
    (folder / "scratch" / "s.md").write_text("# Scratch\n\nNot for the index either.\n")
    return folder


def _documents(settings: Settings) -> dict[str, tuple[int, str | None]]:
    store = Store(settings)
    try:
        with store.session() as session:
            return {key: (row_id, path) for row_id, key, path in session.execute(
                select(Document.id, Document.key, Document.path))}  # fmt: skip
    finally:
        store.close()


class Watcher:
    """The watching process, and its JSON lines as they come."""

    def __init__(self, settings: Settings, fake: FakeOpenAI, folder: Path) -> None:
        command = [sys.executable, "-m", "searchsvc", "ingest", str(folder), "--watch", "--json", "-c", "docs"]
        env = cli_env(settings, fake, SEARCHSVC_WATCH_DEBOUNCE_MS="300")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(json.loads(line))

    def next_batch(self, timeout: float = 30) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            raise AssertionError(f"no batch within {timeout} s: {self.process.stderr.read()[-2000:]}") from None


def test_a_watched_folder_stays_in_sync_as_files_are_added_edited_moved_and_deleted(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = _folder(tmp_path)
    watcher = Watcher(settings, fake_openai, folder)
    try:
        first = watcher.next_batch(60)
        assert first["full_run"] and first["added"] == 3
        assert set(_documents(settings)) == {"notes/a.md", "notes/b.md", "notes/c.md"}  # ignored files left out

        (folder / "new.md").write_text("# New\n\nA new note about quokkas.\n")
        assert watcher.next_batch()["added"] == 1 and "notes/new.md" in _documents(settings)

        (folder / "a.md").write_text("# Note a\n\nThe note a is now about wombats.\n")
        assert watcher.next_batch()["changed"] == 1

        before = _documents(settings)["notes/b.md"][0]
        (folder / "sub").mkdir()
        (folder / "b.md").rename(folder / "sub" / "b-moved.md")
        moved = watcher.next_batch()
        while not moved["renamed"] and not moved["full_run"]:  # the new folder may come as a batch of its own
            moved = watcher.next_batch()
        documents = _documents(settings)
        assert "notes/b.md" not in documents and documents["notes/sub/b-moved.md"][0] == before  # same row

        (folder / "c.md").unlink()
        assert watcher.next_batch()["removed"] == 1 and "notes/c.md" not in _documents(settings)

        (folder / "draft-2.md").write_text("# Draft two\n\nIgnored by .gitignore.\n")
        (folder / "scratch" / "t.md").write_text("# Scratch two\n\nIgnored by .searchignore.\n")
        (folder / "new.md").write_text("# New\n\nQuokkas and wombats.\n")  # a change that is not ignored
        batch = watcher.next_batch()
        assert batch["paths"] == [str(folder / "new.md")], batch
        assert not any(key.startswith(("notes/draft", "notes/scratch")) for key in _documents(settings))
    finally:
        watcher.process.send_signal(signal.SIGINT)
        _, err = watcher.process.communicate(timeout=30)
    assert watcher.process.returncode == 0 and "Traceback" not in err and "WARNING" not in err, err


def test_a_plain_ingest_honours_gitignore_and_searchignore(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = _folder(tmp_path)
    (folder / ".searchignore").write_text("scratch/\n!draft-1.md\n")  # takes back what git ignores
    report = run_ingest(settings, folder)
    assert report.added == 4
    assert set(_documents(settings)) == {"notes/a.md", "notes/b.md", "notes/c.md", "notes/draft-1.md"}
