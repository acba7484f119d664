"""Ingestion jobs in-process and on Celery workers, on this machine's PostgreSQL and RabbitMQ.

    python bench/workers.py [--docs 2000] [--fake-docs 800] [--tpm 60000] [--latency 0.2]
        [--broker amqp://guest:guest@127.0.0.1:5672//] [--work-dir /tmp/bench-workers] [--skip-local] [--skip-fake]

Every run is one job, submitted the way a user does (`POST /v1/ingest-jobs` to a `searchsvc serve`) and
timed from the submission to the job's end as `GET /v1/ingest-jobs/{id}` reports it (polled every 0.2 s),
into a fresh PostgreSQL database (127.0.0.1:5432). "in-process": the server runs the job itself (the
embedded default, no broker). "N workers": the server has SEARCHSVC_BROKER_URL and runs no job; N
`searchsvc worker --concurrency 1` processes, started and ready before the submission, take its
batches (SEARCHSVC_JOB_BATCH_DOCUMENTS, 64). Model loading is inside every run's time (each process
loads the local model at its first batch).

1. The first --docs SciFact documents (../shared/eval/scifact/corpus.jsonl, one Markdown file each,
   written under --work-dir) with the local MiniLM model: in-process vs 1 and 2 workers. Baseline:
   in-process. Embedding is CPU-bound, so on a machine of N cores more workers than N cannot help.
2. The first --fake-docs of those files against the tests' OpenAI-compatible server (tests/fake_openai.py,
   in this process) answering each request in --latency seconds and enforcing --tpm like the real API
   (429 + Retry-After when over), every worker told the same SEARCHSVC_TOKENS_PER_MINUTE: 1 vs 4
   workers. Baseline: the limit's bound, from the tokens actually sent: the server's bucket starts full
   (one minute of tokens), so T tokens cannot be accepted before (T - TPM) / (TPM / 60) s; plus one
   request's latency. Requests are small (4 inputs, one in flight per worker) so that one worker alone
   could spend the whole limit: without the shared budget four workers would each burst a minute of
   tokens at the start and be refused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_openai import FakeOpenAI, token_count  # noqa: E402
from tests.postgres import SERVER  # noqa: E402
from tests.servers import free_port, start_server  # noqa: E402

SCIFACT = REPO.parent / "shared/eval/scifact/corpus.jsonl"
ENDED = ("succeeded", "failed", "cancelled")


def write_folder(folder: Path, count: int) -> Path:
    """The first ``count`` SciFact documents as Markdown files (kept between runs of the bench)."""
    folder = folder.with_name(f"{folder.name}-{count}")
    if folder.exists() and len(list(folder.glob("*.md"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with SCIFACT.open() as lines:
        for _, line in zip(range(count), lines, strict=False):
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n")
    return folder


def base_env(work: Path, name: str, fake: FakeOpenAI | None, extra: dict[str, str]) -> dict[str, str]:
    """A fresh database and data folder for one run; the fake API's address when given."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SEARCHSVC_", "AIMLAPI_"))}
    env.update(
        SEARCHSVC_DATA_DIR=str(work / "data" / name),
        SEARCHSVC_DATABASE_URL=SERVER.database_url(f"bench-workers-{name}-{uuid.uuid4().hex}"),
        SEARCHSVC_INGEST_ROOTS=str(work),
        **extra,
    )
    if fake is not None:
        env.update(AIMLAPI_API_KEY=fake.api_key or "unused", SEARCHSVC_BASE_URL=fake.url,
                   SEARCHSVC_EMBEDDING_MODEL="fake-embed")  # fmt: skip
    return env


def start_workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes, returned once each has said it is ready."""
    workers = []
    for n in range(count):
        log = logs / f"worker-{n}.log"
        command = [sys.executable, "-m", "searchsvc", "worker", "--concurrency", "1"]
        workers.append(subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 120
    while not all(" ready." in (logs / f"worker-{n}.log").read_text(errors="replace") for n in range(count)):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop(workers)
            raise SystemExit(f"the workers did not start; see {logs}")
        time.sleep(0.2)
    return workers


def stop(processes: list[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def run_job(work: Path, name: str, folder: Path, workers: int, fake: FakeOpenAI | None,
            extra: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """One job over ``folder``: by the server itself (``workers`` 0) or by that many Celery workers."""
    logs = work / "logs" / name
    logs.mkdir(parents=True, exist_ok=True)
    env = base_env(work, name, fake, extra)
    if workers:
        env.update(SEARCHSVC_BROKER_URL=ARGS.broker, SEARCHSVC_JOB_QUEUE=f"bench.{uuid.uuid4().hex[:8]}")
    port = free_port()
    processes: list[Any] = [start_server(env, port)]
    try:
        processes += start_workers(env, workers, logs) if workers else []
        base = f"http://127.0.0.1:{port}/v1/ingest-jobs"
        started = time.monotonic()
        job = httpx.post(base, json={"collection": "bench", "source": {"path": str(folder)}}, timeout=60).json()
        while job.get("status") not in ENDED:
            time.sleep(0.2)
            job = httpx.get(f"{base}/{job['id']}", timeout=60).json()
        wall = time.monotonic() - started
    finally:
        stop(processes)
    (logs / "job.json").write_text(json.dumps(job, indent=2))
    if job["status"] != "succeeded":
        raise SystemExit(f"{name}: the job {job['status']}: {job.get('message')} (logs under {logs})")
    return {"name": name, "wall": wall, "job": job}


def local_runs(work: Path) -> None:
    folder = write_folder(work / "scifact", ARGS.docs)
    runs = [run_job(work, f"local-{n}", folder, n, None, {}) for n in (0, 1, 2)]
    base = runs[0]["wall"]
    print(f"\n### {ARGS.docs} SciFact documents, local model (all-MiniLM-L6-v2), {os.cpu_count()} cores\n")
    print("| run | wall s | docs/s | chunks | tokens | vs in-process |")
    print("|---|---|---|---|---|---|")
    for label, run in zip(("in-process (server's runner)", "1 worker", "2 workers"), runs, strict=True):
        job = run["job"]
        print(f"| {label} | {run['wall']:.1f} | {job['documents']['added'] / run['wall']:.1f} | {job['chunks']} "
              f"| {job['tokens']} | {base / run['wall']:.2f}x |")  # fmt: skip
    print(f"\nThe 2-worker job's JSON, as `GET /v1/ingest-jobs/{{id}}` returned it:\n\n```json\n"
          f"{json.dumps(runs[2]['job'], indent=2)}\n```")  # fmt: skip


def fake_runs(work: Path) -> None:
    folder = write_folder(work / "scifact", ARGS.docs)
    subset = work / f"scifact-first-{ARGS.fake_docs}"
    if not subset.exists():
        subset.mkdir()
        for path in sorted(folder.glob("*.md"))[: ARGS.fake_docs]:
            (subset / path.name).write_text(path.read_text())
    extra = {"SEARCHSVC_TOKENS_PER_MINUTE": str(ARGS.tpm), "SEARCHSVC_BATCH_MAX_INPUTS": "4",
             "SEARCHSVC_MAX_IN_FLIGHT": "1", "SEARCHSVC_MAX_RETRIES": "8"}  # fmt: skip
    rows = []
    for count in (1, 4):
        with FakeOpenAI(dimension=256) as fake:
            fake.latency, fake.tokens_per_minute = ARGS.latency, ARGS.tpm
            run = run_job(work, f"fake-{count}", subset, count, fake, extra)
            sent = sum(token_count(text) * times for text, times in fake.embedded_inputs.items())
            rows.append((count, run, sent, len(fake.embedding_requests()), fake.rate_limited))
    print(f"\n### {ARGS.fake_docs} SciFact documents, fake API: {ARGS.latency * 1000:.0f} ms per request, "
          f"{ARGS.tpm} tokens/min, every worker told the same limit\n")  # fmt: skip
    print("| run | wall s | tokens sent | requests | refused (429) | limit's bound s | vs bound |")
    print("|---|---|---|---|---|---|---|")
    for count, run, sent, requests, refused in rows:
        bound = max(0.0, (sent - ARGS.tpm) / (ARGS.tpm / 60)) + ARGS.latency
        print(f"| {count} worker{'s' if count > 1 else ''} | {run['wall']:.1f} | {sent} | {requests} | {refused} "
              f"| {bound:.1f} | {run['wall'] / bound:.2f}x |")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--fake-docs", type=int, default=800)
    parser.add_argument("--tpm", type=int, default=60_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/bench-workers"))
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-fake", action="store_true")
    return parser.parse_args()


def main() -> None:
    if not SCIFACT.exists():
        raise SystemExit(f"{SCIFACT} not found: this bench reads the shared SciFact corpus")
    if SERVER.admin_url() is None:
        raise SystemExit(f"no PostgreSQL for the bench: {SERVER.reason}")
    ARGS.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}; PostgreSQL at 127.0.0.1:5432; broker {ARGS.broker}")
    try:
        if not ARGS.skip_local:
            local_runs(ARGS.work_dir)
        if not ARGS.skip_fake:
            fake_runs(ARGS.work_dir)
    finally:
        SERVER.drop_all()


ARGS = parse_args() if __name__ == "__main__" else argparse.Namespace()

if __name__ == "__main__":
    main()
