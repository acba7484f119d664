"""What an ingestion would cost, worked out without writing or sending anything (``ingest --dry-run``).

For each model: the documents a run would embed (unchanged and renamed ones cost nothing), their chunks
cut with that model's tokenizer and input limit, the texts not already in the embedding cache, the
tokens and requests they need, the time a tokens-per-minute limit implies, and the price from
``SEARCHSVC_EMBEDDING_PRICES`` (USD per million tokens). A model other than the collection's is
estimated as a new collection of that model (its cache still counts).

The provider behind an estimate cannot send: ``PlanningProvider`` refuses to embed, so a dry run that
tried would fail loudly instead of spending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.batcher import plan_batches
from ingest.document import SkippedDocument, SourceDocument
from ingest.pipeline import IngestPipeline
from ingest.sources import SourceRoot, discover, source_root
from searchsvc.config import Settings
from searchsvc.providers import (
    EmbedderRegistry,
    configured_tokenizer,
    embedding_limits,
    is_local_model,
    local_model_name,
)
from searchsvc.providers.base import EmbeddingLimits, EmbeddingProvider
from searchsvc.providers.prompts import PromptStyle, from_json, local_style, unprobed_style
from searchsvc.providers.token_counting import TiktokenCounter, TokenCounter
from searchsvc.storage import repository as repo
from searchsvc.storage.schema import Collection
from searchsvc.store import Store

TOKENS_PER_PAGE = 800  # the page of OpenAI's price list: 62,500 pages per dollar at $0.02 per million tokens
Found = Iterable[SourceDocument | SkippedDocument]


class PlanningProvider(EmbeddingProvider):
    """A model's tokenizer and limits, for planning: it never embeds (a dry run sends nothing)."""

    def __init__(
        self, kind: str, model: str, tokenizer: TokenCounter, limits: EmbeddingLimits, prompts: PromptStyle
    ) -> None:
        self.kind, self.model, self.tokenizer, self.limits, self.prompts = kind, model, tokenizer, limits, prompts

    @property
    def dimension(self) -> int | None:
        return None

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("a dry run sends nothing to an embeddings API")


def planning_provider(
    settings: Settings, model: str | None, collection: Collection | None
) -> tuple[PlanningProvider, bool]:
    """The model to estimate (``None``: the collection's, or what a new collection gets) as a provider that
    cannot send, and whether it is the collection's own model. An API model needs no key for this."""
    if model is None:
        kind, name = (
            (collection.provider, collection.embedding_model)
            if collection is not None
            else EmbedderRegistry(settings).default_spec()
        )
    else:
        local = local_model_name(settings.local_model_dir)
        kind, name = ("local", local) if is_local_model(model, local) else ("openai", model)
    own = collection is not None and (collection.provider, collection.embedding_model) == (kind, name)
    if own:
        prompts = from_json(collection.embedding_prompts)  # type: ignore[union-attr]
    else:
        choose = local_style if kind == "local" else unprobed_style
        prompts = choose(settings.embedding_prompts, name)
    if kind == "local":
        from searchsvc.providers.local import local_limits, local_tokenizer

        tokenizer, config = local_tokenizer(settings.local_model_dir)  # not the model's weights: nothing is embedded
        room = tokenizer.count([prompts.passage])[0] if prompts.passage else 0
        limits = local_limits(tokenizer, config.max_seq_tokens - room)
        return PlanningProvider(kind, name, tokenizer, limits, prompts), own
    tokenizer = configured_tokenizer(settings, name) or TiktokenCounter("cl100k_base")
    return PlanningProvider(kind, name, tokenizer, embedding_limits(settings), prompts), own


@dataclass
class ModelEstimate:
    model: str
    provider: str
    documents: dict[str, int]  # added, changed, renamed, unchanged, skipped
    chunks: int
    chunks_cached: int
    tokens: int  # of the texts to embed (cached ones excluded)
    requests: int
    pages: float  # tokens / TOKENS_PER_PAGE
    price_per_million_tokens: float | None
    cost_usd: float | None
    minutes_at_rate_limit: float | None  # tokens / SEARCHSVC_TOKENS_PER_MINUTE, when a limit is set
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_model(
    store: Store,
    provider: EmbeddingProvider,
    collection: str,
    found: Found,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    prices: dict[str, float],
    same_collection: bool,
) -> ModelEstimate:
    """One model's estimate for ``found`` into ``collection`` (its documents and cache read, nothing written)."""
    pipeline = IngestPipeline(store, provider, collection, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    target = store.find_collection(collection) if same_collection else None
    statuses: Counter[str] = Counter()
    wanted: dict[str, tuple[str, int]] = {}
    chunks = 0
    for status, prepared in pipeline.classify(target, found):
        statuses[status] += 1
        for text_hash, text, tokens in prepared.embed_texts if prepared else []:
            chunks += 1
            wanted[text_hash] = (text, tokens)
    with store.session() as session:
        cached = repo.cached_hashes(session, provider.vectors_key, wanted)
    pending = {h: v for h, v in wanted.items() if h not in cached}
    return _priced(provider, statuses, chunks, len(wanted) - len(pending), pending, prices)


def _priced(
    provider: EmbeddingProvider,
    statuses: Counter[str],
    chunks: int,
    cached: int,
    pending: dict[str, tuple[str, int]],
    prices: dict[str, float],
) -> ModelEstimate:
    tokens = sum(count for _, count in pending.values())
    price = 0.0 if provider.kind == "local" else prices.get(provider.model)
    tpm = provider.limits.tokens_per_minute
    note = None
    if price is None:
        note = f"no price for {provider.model!r}: add it to SEARCHSVC_EMBEDDING_PRICES (USD per million tokens)"
    documents = {name: statuses.get(name, 0) for name in ("added", "changed", "renamed", "unchanged", "skipped")}
    return ModelEstimate(
        model=provider.model,
        provider=provider.kind,
        documents=documents,
        chunks=chunks,
        chunks_cached=cached,
        tokens=tokens,
        requests=len(plan_batches(pending, provider.limits)),
        pages=round(tokens / TOKENS_PER_PAGE, 1),
        price_per_million_tokens=price,
        cost_usd=None if price is None else round(tokens * price / 1e6, 6),
        minutes_at_rate_limit=round(tokens / tpm, 2) if tpm else None,
        note=note,
    )


def estimate(
    store: Store, settings: Settings, collection: str, models: Sequence[str | None], found: Callable[[], Found]
) -> dict[str, Any]:
    """Every model's estimate (``None``: the collection's own, or a new collection's); ``found`` is called once
    per model (its documents are cut with that model's tokenizer)."""
    target = store.find_collection(collection)
    rows = []
    for model in models or [None]:
        provider, own = planning_provider(settings, model, target)
        rows.append(estimate_model(store, provider, collection, found(), chunk_tokens=settings.chunk_tokens,
                                   chunk_overlap=settings.chunk_overlap, prices=settings.embedding_prices,
                                   same_collection=own))  # fmt: skip
    return {"collection": collection, "tokens_per_page": TOKENS_PER_PAGE, "models": [r.as_dict() for r in rows]}


def estimate_path(
    store: Store, settings: Settings, path: Path, collection: str, models: Sequence[str | None], **filters: Any
) -> dict[str, Any]:
    """The estimate for a folder, a JSONL file or one file, keyed as a run would key it."""
    root, label = source_keys(store, store.find_collection(collection), path)

    def found() -> Iterator[SourceDocument | SkippedDocument]:
        include, exclude = filters.get("include"), filters.get("exclude")
        return discover(path, include, exclude, settings.max_file_bytes, label=label, root=root)

    return {"path": str(path), **estimate(store, settings, collection, models, found)}


def source_keys(store: Store, collection: Collection | None, path: Path) -> tuple[SourceRoot, str | None]:
    """How a run would key ``path``'s documents, read only (a run registers a new source; an estimate does not)."""
    root = source_root(path)
    if collection is None:
        return root, None
    if root.kind == "file":
        above = store.registered_folder(collection, path.resolve())
        root = source_root(path, above[0]) if above is not None else root
    with store.session() as session:
        found = repo.registered_source(session, collection.id, [str(root.location)])
    return root, found[1] if found is not None else None
