"""``searchsvc ask``: an answer with numbered citations, printed as it streams."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from searchsvc.answering import Answerer, AskRequest
from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.errors import ProviderError
from searchsvc.runtime import QueryProviders
from searchsvc.store import Store


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to answer from.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Chunks retrieved as sources.")] = 8,
    model: Annotated[str | None, typer.Option(help="Chat model (default SEARCHSVC_CHAT_MODEL).")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, max=2, help="Sampling temperature.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Conversation id, to ask follow-ups.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON (no streaming).")] = False,
    agentic: Annotated[
        bool, typer.Option(help="The chat model searches and reads the collection through tools before answering.")
    ] = False,
    max_steps: Annotated[
        int | None, typer.Option(min=1, max=16, help="Agentic rounds of tool calls (SEARCHSVC_AGENT_MAX_STEPS).")
    ] = None,
) -> None:
    """Answer QUESTION from your documents, citing sources as [1], [2]...

    With AIMLAPI_API_KEY set, a chat model writes the answer; without it, the answer is
    extractive: the retrieved sentences closest to the question, each with its citation.
    """
    settings: Settings = ctx.obj
    out = Output(json_out)
    store = Store(settings, create=False)
    providers = QueryProviders.open(settings, store)
    embedders, chat = providers.embedders, providers.chat
    name = collection or settings.collection
    params: dict[str, Any] = {"temperature": temperature} if temperature is not None else {}
    request = AskRequest(question=question, collection=name, k=k, params=params, model=model,
                         conversation_id=conversation, agentic=agentic, max_steps=max_steps)  # fmt: skip
    try:
        answerer = Answerer(store, embedders.for_collection(store.get_collection(name)), chat, settings)
        if json_out:
            out.data(answerer.answer(request).as_dict())
            return
        _print_stream(out, answerer, request)
    finally:
        providers.close()
        store.close()


def _print_stream(out: Output, answerer: Answerer, request: AskRequest) -> None:
    for event in answerer.stream(request):
        if event.name == "delta":
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif event.name == "tool_call":
            tool = event.tool or {}
            out.note(escape(f"→ {tool.get('name')}({tool.get('arguments')})"))
        elif event.name == "tool_result":
            tool = event.tool or {}
            numbers = [s["number"] for s in tool.get("sources", [])]
            out.note(escape(f"← {tool.get('name')}: {tool.get('error') or f'sources {numbers}'}"))
        elif event.name == "error":
            sys.stdout.write("\n")
            raise ProviderError((event.error or {}).get("message", "the answer was cut"))
        elif event.name == "done":
            sys.stdout.write("\n\n")
            out.note(f"({event.answer.mode} answer)")
            for c in event.answer.citations:
                out.console.print(f"[{c.source.number}] {c.source.location()}", markup=False, highlight=False)
                out.console.print(f"    “{' '.join(c.quote.split())[:200]}”", markup=False, highlight=False)
