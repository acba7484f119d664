"""Peak memory of `searchsvc ingest`: a large folder re-run with a few changes, and one very large file.

    python bench/ingest_memory.py [--workdir /tmp/ingest-memory] [--files 2000] [--total-mb 500]
                                  [--changed 20] [--big-mb 50] [--timeout 3600]

Embeddings come from the tests' OpenAI-compatible server (tests/fake_openai.py, bag-of-words vectors,
no latency) in this process, so embedding is not the bottleneck and memory is the pipeline's own.
Each ingest is a separate `searchsvc` process; its peak RSS is its own ``VmHWM`` (/proc/self/status),
read as it exits. (The kernel's ``ru_maxrss`` of a child is no use here: it keeps the high-water mark of
the forking parent, this process with the fake server in it, across exec.) Baseline, measured in the same
run: the peak RSS of `searchsvc collections` on the same data folder (interpreter, libraries and the
database opened; no ingestion). Sizes are decimal: 500 MB = 500,000,000 bytes, under the 50 MiB
per-file limit for the 50 MB file.

The text is synthetic: words drawn from sample_data's vocabulary in sentences and paragraphs, every
chunk distinct (so every chunk is embedded and stored: no cache flatters it). Files are plain text
(.txt); headings every 40 paragraphs. What it may flatter: real documents with very long lines or
huge tables split differently, and PDFs are parsed whole in memory (pypdf).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_openai import FakeOpenAI  # noqa: E402

WORD = re.compile(r"[A-Za-z]{3,12}")


def vocabulary() -> list[str]:
    words: set[str] = set()
    for path in (REPO / "sample_data").rglob("*"):
        if path.suffix in (".md", ".txt", ".html"):
            words.update(w.lower() for w in WORD.findall(path.read_text(errors="replace")))
    return sorted(words)


def write_text_file(path: Path, size: int, words: list[str], rng: random.Random) -> None:
    """About ``size`` bytes of prose: sentences of 8-24 words, paragraphs of 3-7 sentences."""
    written, paragraph = 0, 0
    with open(path, "w") as handle:
        while written < size:
            if paragraph % 40 == 0:
                heading = " ".join(rng.choices(words, k=4)).title()
                block = f"{heading}\n{'=' * len(heading)}\n\n"
            else:
                sentences = [
                    " ".join(rng.choices(words, k=rng.randint(8, 24))).capitalize() + "."
                    for _ in range(rng.randint(3, 7))
                ]
                block = " ".join(sentences) + "\n\n"
            handle.write(block)
            written += len(block)
            paragraph += 1


def make_folder(folder: Path, files: int, total_bytes: int, words: list[str]) -> None:
    marker = folder / ".complete"
    if marker.exists() and json.loads(marker.read_text()) == [files, total_bytes]:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(11)
    for i in range(files):
        write_text_file(folder / f"doc-{i:05d}.txt", total_bytes // files, words, rng)
    marker.write_text(json.dumps([files, total_bytes]))


# Runs the searchsvc command line in this interpreter and writes its peak RSS (kB) to argv[1] on exit.
LAUNCHER = """
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


def run(args: list[str], env: dict[str, str], timeout: float, workdir: Path) -> dict[str, object]:
    """Run a searchsvc command; wall time, exit status, peak RSS (MiB) of that process, its JSON output."""
    peak_file = workdir / "peak-rss-kb"
    peak_file.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(peak_file), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        status, out = result.returncode, result.stdout
    except subprocess.TimeoutExpired:
        status, out = "timeout", ""
    try:
        report = json.loads(out)
    except ValueError:
        report = None
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return {"seconds": round(time.monotonic() - started, 1), "exit": status, "peak_rss_mib": round(peak, 1),
            "report": report}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ingest-memory"))
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--total-mb", type=int, default=500)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    words = vocabulary()
    folder, big = args.workdir / "folder", args.workdir / "big"
    make_folder(folder, args.files, args.total_mb * 10**6, words)
    size = (big / "big.txt").stat().st_size if (big / "big.txt").exists() else 0
    if not args.big_mb * 10**6 <= size < args.big_mb * 10**6 + 10**5:
        big.mkdir(parents=True, exist_ok=True)
        write_text_file(big / "big.txt", args.big_mb * 10**6, words, random.Random(7))
    rows = []
    with FakeOpenAI(dimension=64, record_inputs=False) as server:
        base = {**os.environ, "AIMLAPI_API_KEY": server.api_key or "", "SEARCHSVC_BASE_URL": server.url}
        base["SEARCHSVC_EMBEDDING_MODEL"] = "fake-embed"
        data = args.workdir / "data-folder"
        shutil.rmtree(data, ignore_errors=True)
        env = {**base, "SEARCHSVC_DATA_DIR": str(data)}
        ingest = ["ingest", str(folder), "--json"]
        rows.append(("folder, first run", run(ingest, env, args.timeout, args.workdir)))
        for path in sorted(folder.glob("*.txt"))[: args.changed]:
            with open(path, "a") as handle:
                handle.write("\n\nAn edited closing paragraph about quokkas and wombats.\n")
        rows.append((f"folder re-run, {args.changed} changed", run(ingest, env, args.timeout, args.workdir)))
        baseline = run(["collections", "--json"], env, 600, args.workdir)
        data_big = args.workdir / "data-big"
        shutil.rmtree(data_big, ignore_errors=True)
        env_big = {**base, "SEARCHSVC_DATA_DIR": str(data_big)}
        big_run = run(["ingest", str(big), "--json"], env_big, args.timeout, args.workdir)
        rows.append((f"one {args.big_mb} MB file", big_run))
    print(f"baseline (searchsvc collections): peak RSS {baseline['peak_rss_mib']} MiB, cpu_count {os.cpu_count()}")
    print("| run | seconds | exit | peak RSS MiB | vs baseline | documents added/changed/unchanged | chunks |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows:
        report = row["report"] or {}
        counts = "/".join(str(report.get(k, "?")) for k in ("added", "changed", "unchanged"))
        ratio = row["peak_rss_mib"] / baseline["peak_rss_mib"]  # type: ignore[operator]
        print(
            f"| {name} | {row['seconds']} | {row['exit']} | {row['peak_rss_mib']} | {ratio:.2f}x | {counts} "
            f"| {report.get('chunks', '?')} |"
        )


if __name__ == "__main__":
    main()
