"""The ``searchsvc`` command line: thin commands over the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from searchsvc.cli.output import fail
from searchsvc.config import Settings
from searchsvc.errors import SearchsvcError

app = typer.Typer(
    help="Semantic search over your documents: ingest a folder or JSONL, search it, serve it over HTTP.\n\n"
    "Data lives in ./.searchsvc by default (SEARCHSVC_DATA_DIR). With AIMLAPI_API_KEY set, embeddings come from "
    "the AI/ML API; without it, from a local all-MiniLM-L6-v2 model, offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def configure(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder for the database and indexes [env SEARCHSVC_DATA_DIR].")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy database URL [env SEARCHSVC_DATABASE_URL].")
    ] = None,
    index_dir: Annotated[Path | None, typer.Option(help="Folder for vector indexes [env SEARCHSVC_INDEX_DIR].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log retries and progress details.")] = False,
) -> None:
    """Read settings once; every command receives them through the context."""
    overrides = {"data_dir": data_dir, "database_url": database_url, "index_dir": index_dir}
    ctx.obj = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if ctx.obj.faiss_threads:
        from searchsvc.storage.vector_index import set_faiss_threads

        set_faiss_threads(ctx.obj.faiss_threads)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """Entry point: library errors become a one-line message and a non-zero exit."""
    from searchsvc.cli import admin_cmd, ask_cmd, eval_cmd, ingest_cmd, search_cmd, serve_cmd  # noqa: F401  (register)

    json_mode = "--json" in sys.argv
    try:
        code = app(standalone_mode=False)  # returns the exit code a command asked for with typer.Exit
        if isinstance(code, int) and code:
            sys.exit(code)
    except SearchsvcError as exc:
        sys.exit(fail(str(exc), exc.code, exc.exit_code, json_mode))
    except typer.Abort:
        sys.exit(fail("aborted", "aborted", 130, json_mode))
    except KeyboardInterrupt:
        sys.exit(
            fail(
                "interrupted; what was committed is kept, run the command again to finish",
                "interrupted",
                130,
                json_mode,
            )
        )
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise
