"""Ingestion streams: memory follows the document at hand, not the folder, and progress moves inside a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ingest.runs import ingest_path
from searchsvc.providers import make_embedding_provider
from searchsvc.store import Store
from tests.conftest import MODEL, cli_env, remote_settings
from tests.fake_openai import FakeOpenAI

# Runs the command line in this interpreter and writes its own peak RSS (VmHWM, kB) to argv[1] on exit.
# (A child's ru_maxrss would include the forking test process's own high-water mark.)
PEAK_RSS_LAUNCHER = """
import atexit, sys
out, sys.argv = sys.argv[1], ["searchsvc", *sys.argv[2:]]
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
from searchsvc.cli import main
main()
"""


def _peak_rss_mib(tmp_path: Path, env: dict[str, str], *args: str) -> float:
    out = tmp_path / "peak-kb"
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_LAUNCHER, str(out), *args], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return int(out.read_text()) / 1024


def test_a_rerun_over_a_large_unchanged_folder_does_not_hold_its_files(tmp_path, fake_openai: FakeOpenAI) -> None:
    """200 MB of HTML whose visible text is one line each: cheap to index, heavy to read. Re-running hashes
    every byte; before streaming, every file's bytes stayed in memory until the run ended."""
    folder = tmp_path / "pages"
    folder.mkdir()
    script = "<script>" + "var x = 'padding that is never visible';\n" * 50_000 + "</script>"  # ~2 MB
    for i in range(100):
        (folder / f"page-{i:03d}.html").write_text(f"<html><body>{script}<p>Page {i} about quokkas.</p></body></html>")
    empty = tmp_path / "empty"
    empty.mkdir()
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    env = cli_env(settings, fake_openai)
    assert subprocess.run([sys.executable, "-m", "searchsvc", "ingest", str(folder)], env=env).returncode == 0
    baseline = _peak_rss_mib(tmp_path, env, "ingest", str(empty), "-c", "other", "--json")
    rerun = _peak_rss_mib(tmp_path, env, "ingest", str(folder), "--json")
    assert rerun - baseline < 60, (rerun, baseline)  # the folder is 200 MB


def test_progress_moves_in_chunks_and_tokens_inside_one_large_file(tmp_path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, batch_max_inputs=16, max_in_flight=1)
    folder = tmp_path / "book"
    folder.mkdir()
    (folder / "book.txt").write_text("\n\n".join(f"Paragraph {i} tells of quokkas and wombats." for i in range(3000)))
    events: list[tuple[str, int, int]] = []

    class Recorder:
        def documents(self, total: int | None) -> None:
            events.append(("documents", total or 0, 0))

        def advance(self, documents: int) -> None:
            events.append(("advance", documents, 0))

        def embedded(self, chunks: int, tokens: int) -> None:
            events.append(("embedded", chunks, tokens))

    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        report = ingest_path(store, provider, folder, "docs", chunk_tokens=64, chunk_overlap=0, progress=Recorder())
    finally:
        store.close()
        provider.close()
    embedded = [e for e in events if e[0] == "embedded"]
    assert events[0] == ("documents", 1, 0) and events[-1] == ("advance", 1, 0)
    assert len(embedded) == report.embedding_requests > 10  # the bar moves long before the one document is done
    assert sum(e[1] for e in embedded) == report.chunks and sum(e[2] for e in embedded) == report.tokens_embedded
