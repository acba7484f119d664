"""A collection's texts embedded again with another model, from SQL alone (a model switch's shadow generation).

Each chunk's embedded text is rebuilt from what SQL keeps (its text, headings and document title, joined
as the chunker joined them) and checked against the chunk's ``embed_hash``: a vector is only ever stored
under the hash of the text it is the embedding of. Texts that already have a vector of the model (the
``embeddings`` table is also the cache) are not sent again, and every request's vectors are committed
with the migration's counts and a ledger row as it returns: a kill loses at most the requests in flight,
and a re-run pays only for what was not yet kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session

from ingest.batcher import EmbeddingBatch
from ingest.chunker import embed_header
from ingest.embedding import embed_pending
from searchsvc.crashpoints import NO_CRASHES, Crashpoints
from searchsvc.errors import IndexMismatchError, ProviderResponseError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.usage import Usage
from searchsvc.storage import repository as repo
from searchsvc.storage.model_migrations import StoredChunk, chunk_pages
from searchsvc.storage.rate_budget import pacer_for
from searchsvc.storage.schema import ModelMigration, utcnow
from searchsvc.storage.usage_ledger import Prices, record_now


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def embedded_text(chunk: StoredChunk) -> str | None:
    """The exact text the chunk's vector was made from, or None when SQL cannot give it back (a chunk
    written by a chunker that joined its header otherwise)."""
    headings = tuple(chunk.heading_path)
    candidates = []
    for title in (chunk.title, None):  # the document's own title heads it; a file name (shown only) does not
        header = embed_header(title, headings)
        if header:
            candidates.append(f"{header}\n{chunk.text}")
    candidates.append(chunk.text)  # a header too long to repeat was left out
    return next((text for text in candidates if text_hash(text) == chunk.embed_hash), None)


@dataclass
class ShadowPass:
    """What one pass over a collection's chunks found and did."""

    chunks: int = 0
    texts: int = 0  # distinct embedded texts of the chunks
    embedded: int = 0  # texts sent and kept in this pass
    cached: int = 0  # texts that already had a vector of the model
    over_limit: int = 0  # texts longer than the model reads in one input (it truncates or refuses them)
    refused: dict[str, str] = field(default_factory=dict)  # hash -> the API's reason
    unrecoverable: list[str] = field(default_factory=list)  # keys of documents whose embedded text SQL cannot rebuild


class ShadowEmbedder:
    """Embeds the collection's texts with ``provider``'s model into ``embeddings``, counted on the migration
    (``migration_id``; None: a rollback's pass, in the ledger only)."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        provider: EmbeddingProvider,
        migration_id: int | None,
        collection: str,
        prices: Prices,
        crashpoints: Crashpoints = NO_CRASHES,
    ) -> None:
        self.sessions, self.provider, self.migration_id = sessions, provider, migration_id
        self.collection, self.prices, self.crashpoints = collection, prices, crashpoints
        self.pacer = pacer_for(sessions, provider)
        self.dimension: int | None = None

    def run(
        self, collection_id: int, expected_dimension: int | None, progress: Callable[[ShadowPass], None] | None = None
    ) -> ShadowPass:
        """One pass over every chunk of the collection, by pages of ids."""
        self.dimension = expected_dimension
        found = ShadowPass()
        seen: set[str] = set()
        for page in chunk_pages(self.sessions, collection_id):
            found.chunks += len(page)
            texts = self._texts(page, seen, found)
            found.texts = len(seen)
            with self.sessions() as session:
                cached = repo.cached_hashes(session, self.provider.vectors_key, texts)
            found.cached += len(cached)
            pending = {h: t for h, t in texts.items() if h not in cached}
            counts = self.provider.tokenizer.count(list(pending.values())) if pending else []
            limit = self.provider.limits.max_tokens_per_input
            found.over_limit += sum(1 for n in counts if n > limit)
            work = {h: (t, n) for (h, t), n in zip(pending.items(), counts, strict=True)}
            found.refused.update(embed_pending(self.provider, work, self._keep, self.pacer))
            found.embedded += len(work) - len(found.refused.keys() & work.keys())
            if progress is not None:
                progress(found)
        return found

    def _texts(self, page: list[StoredChunk], seen: set[str], found: ShadowPass) -> dict[str, str]:
        texts: dict[str, str] = {}
        for chunk in page:
            if chunk.embed_hash in seen:
                continue
            seen.add(chunk.embed_hash)
            text = embedded_text(chunk)
            if text is None:
                found.unrecoverable.append(chunk.key)
            else:
                texts[chunk.embed_hash] = text
        return texts

    def _keep(self, batch: EmbeddingBatch, vectors: np.ndarray) -> None:
        """One request's vectors, its ledger row and the migration's counts, in one transaction."""
        if vectors.ndim != 2 or vectors.shape[0] != len(batch.texts):
            raise ProviderResponseError(f"{vectors.shape[0]} vectors came back for {len(batch.texts)} inputs")
        dimension = int(vectors.shape[1])
        if self.dimension is not None and dimension != self.dimension:
            raise IndexMismatchError(
                f"model {self.provider.model!r} returned {dimension}-dimensional vectors, earlier {self.dimension}; "
                "nothing more was stored"
            )
        self.dimension = dimension
        with self.sessions() as session:
            repo.store_embeddings(session, self.provider.vectors_key, dict(zip(batch.hashes, vectors, strict=True)))
            paid = Usage(self.provider.kind, self.provider.model, "migrate", self.collection, batch.tokens,
                         estimated=True)  # fmt: skip
            record_now(session, paid, self.prices)
            counts = {"texts_embedded": ModelMigration.texts_embedded + len(batch.texts),
                      "tokens": ModelMigration.tokens + batch.tokens, "requests": ModelMigration.requests + 1,
                      "heartbeat_at": utcnow()}  # fmt: skip
            if self.migration_id is not None:
                session.execute(update(ModelMigration).where(ModelMigration.id == self.migration_id).values(**counts))
            session.commit()
        self.crashpoints.hit("migrated_batch")
