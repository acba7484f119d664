"""The ``searchsvc`` command line: thin commands over the library."""

from __future__ import annotations

import logging
import os
import signal
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
        from searchsvc.storage.faiss_index import set_faiss_threads

        set_faiss_threads(ctx.obj.faiss_threads)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


class Interrupted(BaseException):
    """Ctrl-C, raised in place of KeyboardInterrupt so the command-line library cannot swallow it."""


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted


def main() -> None:
    """Entry point: library errors and usage errors become one ``error:`` line and a non-zero exit."""
    from searchsvc.cli import (  # noqa: F401  (register the commands)
        admin_cmd,
        ask_cmd,
        eval_cmd,
        ingest_cmd,
        jobs_cmd,
        mcp_cmd,
        migrate_cmd,
        search_cmd,
        serve_cmd,
        usage_cmd,
    )

    json_mode = "--json" in sys.argv
    signal.signal(signal.SIGINT, _interrupt)
    try:
        code = app(standalone_mode=False, prog_name="searchsvc")  # the exit code a command asked for
        if isinstance(code, int) and code:
            sys.exit(code)
    except SearchsvcError as exc:
        sys.exit(fail(str(exc), exc.code, exc.exit_code, json_mode))
    except Interrupted:
        # Committed work is safe (the same holds for a kill); don't wait at exit for request threads.
        fail(INTERRUPTED, "interrupted", 130, json_mode)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(fail(INTERRUPTED, "interrupted", 130, json_mode))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            sys.stdout.write(context.get_help() + "\n")  # `searchsvc` or `searchsvc db` alone: the help
            sys.exit(0)
        usage = _usage_error(exc)
        if usage is None:
            raise
        sys.exit(fail(usage, "usage", 2, json_mode))


INTERRUPTED = "interrupted; what was committed is kept, run the command again to finish"


def _usage_error(exc: Exception) -> str | None:
    """The one-line message of a command-line usage error (typer bundles its own click; older ones use click)."""
    format_message = getattr(exc, "format_message", None)
    if not isinstance(exc, typer.TyperException) and type(exc).__module__.split(".")[0] != "click":
        return None
    if format_message is None:
        return str(exc)
    context = getattr(exc, "ctx", None)
    hint = f" (see `{context.command_path} --help`)" if context is not None else ""
    return f"{format_message()}{hint}"
