"""``searchsvc ask``: an answer with numbered citations, printed as it streams."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from searchsvc.answering import Answerer, AskRequest
from searchsvc.api.schemas import GenerationParams
from searchsvc.cli import app
from searchsvc.cli.output import Output
from searchsvc.config import Settings
from searchsvc.errors import ProviderError
from searchsvc.runtime import QueryProviders
from searchsvc.store import Store


def _bounds(name: str) -> dict[str, Any]:
    """typer's range of a generation parameter: the bounds /v1/ask takes (``GenerationParams``). An open
    bound (``gt``) is left to ``GenerationParams`` (typer has no open ranges); the help text states it."""
    found: dict[str, Any] = {}
    for rule in GenerationParams.model_fields[name].metadata:
        if getattr(rule, "ge", None) is not None:
            found["min"] = rule.ge
        if getattr(rule, "le", None) is not None:
            found["max"] = rule.le
    return found


def _option(name: str, help_text: str) -> Any:
    return typer.Option(f"--{name.replace('_', '-')}", **_bounds(name), help=help_text, rich_help_panel=GENERATION)


EXTRA_BODY_HELP = (
    "A JSON object of the chat server's own parameters, merged unchanged into the request it is sent: "
    """llama.cpp '{"repeat_penalty": 1.1, "mirostat": 2}', vLLM '{"min_p": 0.05}'. Keys searchsvc sets """
    "(model, messages, stream, tools...) and parameters with an option here are refused."
)
GENERATION = "Generation (as /v1/ask takes them)"
Temperature = Annotated[float | None, _option("temperature", "Sampling temperature: higher, more varied.")]
MaxTokens = Annotated[int | None, _option("max_tokens", "The most tokens the answer may take.")]
TopP = Annotated[float | None, _option("top_p", "Nucleus sampling: sample from this share of probability mass.")]
TopK = Annotated[int | None, _option("top_k", "Sample from the K likeliest tokens (AI/ML API, vLLM).")]
Stop = Annotated[list[str] | None, typer.Option(help="A sequence that ends the answer; repeat the option for up to "
                                                "4 (100 characters each).", rich_help_panel=GENERATION)]  # fmt: skip
FrequencyPenalty = Annotated[float | None, _option("frequency_penalty", "Penalise tokens by how often they were "
                                                   "written already (fewer repeats).")]  # fmt: skip
PresencePenalty = Annotated[float | None, _option("presence_penalty", "Penalise tokens written at all (new "
                                                  "topics).")]  # fmt: skip
RepetitionPenalty = Annotated[float | None, _option("repetition_penalty", "Above 0; above 1 discourages repetition "
                                                    "(AI/ML API, vLLM; llama.cpp calls it repeat_penalty: use "
                                                    "--extra-body).")]  # fmt: skip
Seed = Annotated[int | None, typer.Option(help="Sampling seed, for servers that support it: the same seed, the "
                                          "same answer.", rich_help_panel=GENERATION)]  # fmt: skip
ExtraBody = Annotated[str | None, typer.Option(help=EXTRA_BODY_HELP, rich_help_panel=GENERATION)]


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Collection to answer from.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Chunks retrieved as sources.")] = 8,
    model: Annotated[str | None, typer.Option(help="Chat model (default SEARCHSVC_CHAT_MODEL).")] = None,
    temperature: Temperature = None,
    max_tokens: MaxTokens = None,
    top_p: TopP = None,
    top_k: TopK = None,
    stop: Stop = None,
    frequency_penalty: FrequencyPenalty = None,
    presence_penalty: PresencePenalty = None,
    repetition_penalty: RepetitionPenalty = None,
    seed: Seed = None,
    extra_body: ExtraBody = None,
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
    sampling = {"temperature": temperature, "max_tokens": max_tokens, "top_p": top_p, "top_k": top_k,
                "stop": stop or None, "frequency_penalty": frequency_penalty, "presence_penalty": presence_penalty,
                "repetition_penalty": repetition_penalty, "seed": seed}  # fmt: skip
    params = generation_params(ctx, sampling, extra_body)
    out = Output(json_out)
    store = Store(settings, create=False)
    providers = QueryProviders.open(settings, store)
    embedders, chat = providers.embedders, providers.chat
    name = collection or settings.collection
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


def generation_params(ctx: typer.Context, sampling: dict[str, Any], extra_body: str | None) -> dict[str, Any]:
    """The options as the chat request takes them, checked as /v1/ask checks them; a usage error names the
    option when one does not fit."""
    values = {name: value for name, value in sampling.items() if value is not None}
    if extra_body is not None:
        try:
            values["extra_body"] = json.loads(extra_body)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(
                f"not JSON ({exc.msg} at character {exc.pos}); give an object such as '{{\"repeat_penalty\": 1.1}}'",
                ctx=ctx,
                param_hint="'--extra-body'",
            ) from None
    try:
        return GenerationParams(**values).generation_params()
    except ValidationError as exc:
        error = exc.errors()[0]
        option = f"--{str(error['loc'][0]).replace('_', '-')}" if error["loc"] else "a generation option"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(message, ctx=ctx, param_hint=f"'{option}'") from None


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
