"""``searchsvc eval``: retrieval quality on a BEIR-layout folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ingest.runs import ingest_path
from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.cli.search_cmd import Mode
from searchsvc.config import Settings
from searchsvc.evaluation import latency_summary, load_beir, run_queries, score_run
from searchsvc.providers import EmbedderRegistry
from searchsvc.search import search
from searchsvc.store import Store

EVAL_DEPTH = 100  # documents retrieved per query (Recall@100 needs 100)


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels_<split>.tsv.")],
    split: Annotated[str, typer.Option(help="Which qrels to score: train, dev or test.")] = "test",
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Default: beir-<folder name>.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N judged queries.")] = None,
    mode: Annotated[list[Mode] | None, typer.Option(help="Modes to score (repeatable); default all three.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Ingest a BEIR corpus (reused when unchanged), run its queries, print nDCG@10, Recall@10/100, MRR@10."""
    settings: Settings = ctx.obj
    out = Output(json_out)
    dataset = load_beir(folder, split)
    queries = dict(list(dataset.queries.items())[:limit]) if limit else dataset.queries
    name = collection or f"beir-{folder.resolve().name}"
    store = Store(settings)
    embedders = EmbedderRegistry(settings.model_copy(update={"query_cache_size": 0}))  # each mode pays its embedding
    try:
        provider = embedders.for_existing_or_new(store.find_collection(name))
        out.note(f"Embedding with {provider.describe()}")
        report = ingest_path(
            store,
            provider,
            dataset.corpus,
            name,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
        )
        out.note(f"Corpus: {report.added} added, {report.changed} changed, {report.unchanged} unchanged")

        modes = [m.value for m in mode] if mode else ["vector", "keyword", "hybrid"]
        runs = {}
        for name_of_mode in modes:

            def ranked_documents(text: str, m: str = name_of_mode) -> list[str]:
                hits = search(store, provider, name, text, k=EVAL_DEPTH, group_by="document", mode=m).hits
                return [hit.document_key for hit in hits]

            runs[name_of_mode] = run_queries(ranked_documents, queries)
    finally:
        store.close()
        embedders.close()
    qrels = {qid: dataset.qrels[qid] for qid in queries}
    result = {
        "collection": name,
        "split": split,
        "queries": len(queries),
        "model": provider.model,
        "modes": {m: {**score_run(run, qrels), **latency_summary(lat)} for m, (run, lat) in runs.items()},
    }
    if json_out:
        out.data(result)
        return
    _print_table(out, result)


def _print_table(out: Output, result: dict[str, Any]) -> None:
    table = Table("mode", "nDCG@10", "Recall@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms")
    for mode, m in result["modes"].items():
        table.add_row(
            mode,
            *(f"{m[key]:.4f}" for key in ("ndcg@10", "recall@10", "recall@100", "mrr@10")),
            f"{m['p50_ms']:.1f}",
            f"{m['p95_ms']:.1f}",
        )
    out.console.print(
        f"{result['collection']}, split {result['split']}, {result['queries']} queries, model {result['model']}"
    )
    out.console.print(table)
