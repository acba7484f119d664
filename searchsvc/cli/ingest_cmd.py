"""``searchsvc ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.pipeline import IngestReport, ingest_path
from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.crashpoints import Crashpoints
from searchsvc.errors import InvalidInputError
from searchsvc.providers import make_embedding_provider
from searchsvc.store import Store


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("embedding", total=None)

    def documents(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, documents: int) -> None:
        self._progress.advance(self._task, documents)


@app.command()
def ingest(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A folder to walk, a .jsonl file of records, or one document.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to ingest into.")] = None,
    prune: Annotated[bool, typer.Option(help="Delete documents of this source that are no longer present.")] = False,
    include: Annotated[list[str] | None, typer.Option(help="Glob of relative paths to include (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Glob of relative paths to exclude (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
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
    provider = make_embedding_provider(settings)
    out.note(f"Embedding with {provider.describe()}")
    store = Store(settings)
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("documents"),
            TimeElapsedColumn(),
            console=out.status_console,
            disable=json_out,
            transient=True,
        ) as bar:
            report = ingest_path(
                store,
                provider,
                path,
                name,
                chunk_tokens=settings.chunk_tokens,
                chunk_overlap=settings.chunk_overlap,
                prune=prune,
                include=include,
                exclude=exclude,
                progress=_RichProgress(bar),
                crashpoints=Crashpoints(settings.crash_at),
                max_file_bytes=settings.max_file_bytes,
            )
    finally:
        store.close()
        provider.close()
    if json_out:
        out.data(report.as_dict())
    else:
        _print_report(out, report)


def _print_report(out: Output, report: IngestReport) -> None:
    out.console.print(
        f"Collection [bold]{report.collection}[/] ({report.provider} model {report.model}): "
        f"{report.added} added, {report.changed} changed, {report.unchanged} unchanged, {report.removed} removed; "
        f"{report.chunks} chunks ({report.chunks_cached} from cache), {report.tokens_embedded} tokens embedded "
        f"in {report.embedding_requests} requests, {report.seconds:.1f}s",
        highlight=False,
    )
    for skipped in report.skipped:
        out.console.print(
            f"  skipped {skipped['path']}: {skipped['reason']}", highlight=False, style="yellow", markup=False
        )
