"""``searchsvc ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from ingest.runs import IngestReport, ingest_path
from searchsvc.cli import app
from searchsvc.cli.dry_run import dry_run as dry_run_estimate
from searchsvc.cli.dry_run import print_estimate
from searchsvc.cli.output import Output, document_progress
from searchsvc.cli.watch import watch_folder
from searchsvc.config import Settings
from searchsvc.crashpoints import Crashpoints
from searchsvc.errors import InvalidInputError
from searchsvc.jobs.submit import submit_job
from searchsvc.providers import EmbedderRegistry
from searchsvc.store import Store, validate_collection_name


class _RichProgress:
    """Documents done (of the total when known), and chunks and tokens embedded so far: a single large
    file shows movement too."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._chunks = self._tokens = 0
        self._task = progress.add_task("ingesting", total=None, embedded="")

    def documents(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, documents: int) -> None:
        self._progress.advance(self._task, documents)

    def embedded(self, chunks: int, tokens: int) -> None:
        self._chunks += chunks
        self._tokens += tokens
        self._progress.update(self._task, embedded=f"{self._chunks:,} chunks, {self._tokens:,} tokens embedded")


@app.command()
def ingest(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A folder to walk, a .jsonl file of records, or one document.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to ingest into.")] = None,
    prune: Annotated[bool, typer.Option(help="Delete documents of this source that are no longer present.")] = False,
    include: Annotated[list[str] | None, typer.Option(help="Glob of relative paths to include (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of relative paths to exclude (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--async",
            help="Queue it as a job and print the job's id: a `searchsvc serve` on the same database runs it "
            "(follow it with `searchsvc jobs watch ID`).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Write nothing and send nothing: print the documents, chunks, tokens, requests, time at the "
            "tokens-per-minute limit and cost each model would take (only texts not in the embedding cache count).",
        ),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Ingest the folder, then keep it in sync as files change (debounced; deletes are removed; "
            ".gitignore and .searchignore are honoured) until Ctrl-C.",
        ),
    ] = False,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="With --dry-run: a model to estimate (repeatable; default: the collection's)."),
    ] = None,
) -> None:
    """Parse, chunk, embed and index documents; unchanged documents are skipped.

    Supported files: Markdown, plain text, HTML and PDF. JSONL records look like
    {"id": ..., "text": ..., "title": ..., "metadata": {...}} (BEIR's "_id" works too).
    """
    settings: Settings = ctx.obj
    out = Output(json_out)
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist; pass a folder, a .jsonl file or a document")
    name = collection or settings.collection
    options = {"prune": prune, "include": include, "exclude": exclude}
    _check_modes(queue, dry_run, watch, model)
    if watch:
        watch_folder(settings, out, path, name, {"include": include, "exclude": exclude})
    elif dry_run:
        estimate = dry_run_estimate(settings, path, name, options, model or [])
        out.data(estimate) if json_out else print_estimate(out, estimate)
    elif queue:
        _queue_job(settings, out, name, path, options)
    else:
        report = _ingest_here(settings, out, path, name, options)
        out.data(report.as_dict()) if json_out else _print_report(out, report)


def _check_modes(queue: bool, dry_run: bool, watch: bool, model: list[str] | None) -> None:
    if model and not dry_run:
        raise InvalidInputError("--model goes with --dry-run; a new collection's model is SEARCHSVC_EMBEDDING_MODEL")
    if watch and (queue or dry_run):
        raise InvalidInputError("--watch runs here until Ctrl-C; it does not go with --async or --dry-run")


def _ingest_here(settings: Settings, out: Output, path: Path, name: str, options: dict[str, Any]) -> IngestReport:
    """Run the ingestion in this process, with a progress bar (none with --json)."""
    store = Store(settings)
    embedders = EmbedderRegistry(settings)
    try:
        provider = embedders.for_existing_or_new(store.find_collection(name))
        out.note(f"Embedding with {provider.describe()}")
        with document_progress(
            out, "[progress.description]{task.description}", "documents {task.fields[embedded]}"
        ) as bar:
            report = ingest_path(
                store,
                provider,
                path,
                name,
                chunk_tokens=settings.chunk_tokens,
                chunk_overlap=settings.chunk_overlap,
                prune=options["prune"],
                include=options["include"],
                exclude=options["exclude"],
                progress=_RichProgress(bar),
                crashpoints=Crashpoints(settings.crash_at),
                max_file_bytes=settings.max_file_bytes,
            )
    finally:
        store.close()
        embedders.close()
    return report


def _queue_job(settings: Settings, out: Output, name: str, path: Path, options: dict[str, Any]) -> None:
    validate_collection_name(name)
    store = Store(settings)
    try:
        job = submit_job(store, settings, name, {"path": str(path.resolve())}, options)
    finally:
        store.close()
    if out.json_mode:
        out.data(job)
        return
    out.console.print(job["id"], highlight=False)  # alone on stdout: id=$(searchsvc ingest --async ...)
    runs = "a `searchsvc worker`" if settings.broker_url else "a `searchsvc serve` on this database"
    out.note(f"queued; {runs} runs it: searchsvc jobs watch {job['id']}")


def _print_report(out: Output, report: IngestReport) -> None:
    out.console.print(
        f"Collection [bold]{report.collection}[/] ({report.provider} model {report.model}): "
        f"{report.added} added, {report.changed} changed, "
        f"{f'{report.renamed} renamed, ' if report.renamed else ''}{report.unchanged} unchanged"
        f"{f' ({report.skipped_before} skipped in an earlier run)' if report.skipped_before else ''}, "
        f"{report.removed} removed, {len(report.skipped)} skipped; "
        f"{report.chunks} chunks ({report.chunks_cached} from cache), {report.tokens_embedded} tokens embedded "
        f"in {report.embedding_requests} requests"
        f"{f' ({report.batches_split} split in two and sent again)' if report.batches_split else ''}, "
        f"{report.seconds:.1f}s",
        highlight=False,
    )
    for moved in report.renames:
        edited = " (edited: changed chunks re-embedded)" if moved["changed"] else ""
        out.console.print(f"  renamed {moved['from']} -> {moved['to']}{edited}", highlight=False, markup=False)
    for skipped in report.skipped:
        out.console.print(
            f"  skipped {skipped['path']}: {skipped['reason']}", highlight=False, style="yellow", markup=False
        )
