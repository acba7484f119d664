"""``searchsvc jobs``: ingestion jobs (list, watch, cancel); ``searchsvc ingest --async`` creates them."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from searchsvc.cli import app
from searchsvc.cli.output import Output, document_progress
from searchsvc.config import Settings
from searchsvc.errors import ConfigError, InvalidInputError
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.view import job_json
from searchsvc.store import Store

jobs_app = typer.Typer(
    help="Ingestion jobs: `searchsvc jobs` lists them, `jobs watch ID` follows one, `jobs cancel ID` stops one. "
    "Jobs run in `searchsvc serve` (SEARCHSVC_JOB_WORKERS runners per server) on the same database.",
    invoke_without_command=True,
)
app.add_typer(jobs_app, name="jobs")

WATCH_SECONDS = 0.5


@jobs_app.callback()
def jobs_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help=f"Only jobs in this status ({', '.join(jobs.STATUSES)}).")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only jobs of this collection.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
) -> None:
    """List ingestion jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in jobs.STATUSES:
        raise InvalidInputError(f"--status must be one of {', '.join(jobs.STATUSES)}")
    out = Output(json_out)
    found = _with_store(ctx.obj, lambda store: _listed(store, status, collection, limit))
    if json_out:
        out.data({"object": "list", "data": found})
        return
    table = Table("collection", "status", "documents", "chunks", "tokens", "seconds", "message")
    table.add_column("id", no_wrap=True)  # whole, to be copied into `jobs watch`
    for job in found:
        docs = job["documents"]
        elapsed = "" if job["elapsed_seconds"] is None else str(job["elapsed_seconds"])
        table.add_row(job["collection"], job["status"], f"{docs['done']}/{docs['total'] or '?'}", str(job["chunks"]),
                      str(job["tokens"]), elapsed, job["message"] or "", job["id"])  # fmt: skip
    out.console.print(table if found else "No ingestion jobs.")


@jobs_app.command("watch")
def watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (from `ingest --async` or `searchsvc jobs`).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the finished job as JSON.")] = False,
) -> None:
    """Show a job's progress until it ends; exit 0 if it succeeded, 1 if it failed or was cancelled."""
    out = Output(json_out)
    job = _with_store(ctx.obj, lambda store: _follow(store, job_id, out))
    if json_out:
        out.data(job)
    else:
        _print_end(out, job)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Cancel a job: a queued one at once, a running one at its next progress report (what it committed stays)."""
    out = Output(json_out)
    job = _with_store(ctx.obj, lambda store: _cancelled(store, job_id))
    if json_out:
        out.data(job)
    else:
        state = "cancel requested" if job["status"] == "running" else job["status"]
        out.console.print(f"{job['id']}: {state}", highlight=False)


def _with_store(settings: Settings, use: Any) -> Any:
    store = Store(settings)
    try:
        return use(store)
    finally:
        store.close()


def _listed(store: Store, status: str | None, collection: str | None, limit: int) -> list[dict[str, Any]]:
    with store.session() as session:
        return [job_json(job) for job in jobs.listed(session, status, collection, limit)]


def _cancelled(store: Store, job_id: str) -> dict[str, Any]:
    with store.session() as session:
        return job_json(jobs.request_cancel(session, job_id))


def _read(store: Store, job_id: str) -> dict[str, Any]:
    with store.session() as session:
        return job_json(jobs.get(session, job_id))


def _follow(store: Store, job_id: str, out: Output) -> dict[str, Any]:
    job = _read(store, job_id)
    with document_progress(out, "{task.fields[status]}", "documents, {task.fields[detail]}") as bar:
        task = bar.add_task(job_id, total=None, status=job["status"], detail="")
        while job["status"] in ("queued", "running"):
            docs = job["documents"]
            eta = f", about {job['eta_seconds']:.0f} s left" if job["eta_seconds"] else ""
            detail = f"{job['chunks']:,} chunks, {job['tokens']:,} tokens{eta}"
            bar.update(task, total=docs["total"], completed=docs["done"], status=job["status"], detail=detail)
            time.sleep(WATCH_SECONDS)
            job = _read(store, job_id)
    return job


def _print_end(out: Output, job: dict[str, Any]) -> None:
    docs = job["documents"]
    out.console.print(
        f"{job['id']} {job['status']}: {docs['added']} added, {docs['changed']} changed, {docs['unchanged']} "
        f"unchanged, {docs['removed']} removed, {docs['skipped']} skipped; {job['chunks']} chunks, {job['tokens']} "
        f"tokens in {job['requests']} requests, {job['elapsed_seconds']} s"
        + (f" ({job['message']})" if job["message"] else ""),
        highlight=False,
    )
    for skip in job["skips"]:
        out.console.print(f"  skipped {skip['path']}: {skip['reason']}", highlight=False, style="yellow", markup=False)


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Batches this worker runs at once (threads).")] = 1,
) -> None:
    """Run ingestion jobs from the broker (SEARCHSVC_BROKER_URL, amqp:// or redis://) until stopped.

    Start any number, on any machine that sees the same database and the same files: each takes one
    batch of documents at a time; a killed worker's batch goes to another."""
    settings: Settings = ctx.obj
    if settings.broker_url is None:
        raise ConfigError(
            "no SEARCHSVC_BROKER_URL: set amqp://... or redis://...; without one, `searchsvc serve` runs jobs"
        )
    from searchsvc.jobs.celery_tasks import run_worker

    run_worker(settings, concurrency)
