"""Steps of a distributed batch: embedding ahead of the writer lock, and pruning a source by its full list.

``prefetch`` parses, chunks and embeds a set of documents into the embedding cache without holding
the collection's writer lock.

Workers that ingest batches of one collection take turns writing (one writer per collection), but the
expensive part, embedding, needs no turn: vectors go to the ``embeddings`` table keyed by model and
text hash, which every later run reads as a cache. So a distributed batch first prefetches (in
parallel with other workers), then runs the ordinary pipeline under the lock, which finds every
vector cached and only writes documents, chunks and the index."""

from __future__ import annotations

from collections.abc import Iterable

from ingest.document import SkippedDocument, SourceDocument
from ingest.pipeline import IngestPipeline, IngestReport
from searchsvc.storage import repository as repo


def prefetch(pipeline: IngestPipeline, found: Iterable[SourceDocument | SkippedDocument]) -> IngestReport:
    """Embed the new text of ``found`` into the cache; returns the tokens and requests it cost."""
    collection = pipeline.store.ensure_collection(pipeline.collection_name, pipeline.provider)
    spent = IngestReport(pipeline.collection_name, pipeline.provider.kind, pipeline.provider.model)
    wanted: dict[str, tuple[str, int]] = {}
    for _, prepared in pipeline.classify(collection, found):
        for text_hash, text, tokens in prepared.embed_texts if prepared else []:
            wanted[text_hash] = (text, tokens)
        if len(wanted) >= pipeline.window_chunks:
            collection = _embed_uncached(pipeline, collection, wanted, spent)
            wanted = {}
    _embed_uncached(pipeline, collection, wanted, spent)
    return spent


def _embed_uncached(pipeline: IngestPipeline, collection, wanted: dict[str, tuple[str, int]], spent: IngestReport):  # type: ignore[no-untyped-def]
    with pipeline.store.session() as session:
        cached = repo.cached_hashes(session, pipeline.provider.vectors_key, wanted)
    pending = {text_hash: value for text_hash, value in wanted.items() if text_hash not in cached}
    spent.chunks += len(pending)  # texts embedded here: the locked run will find them in the cache
    return pipeline._embed(collection, pending, spent)[0] if pending else collection  # refusals: the locked run


def prune_source(pipeline: IngestPipeline, source: str, keep: set[str]) -> int:
    """Delete the documents of ``source`` whose keys are not in ``keep`` (a folder's files, listed when its
    job was planned); returns how many went."""
    report = IngestReport(pipeline.collection_name, pipeline.provider.kind, pipeline.provider.model)
    with pipeline.store.writer_lock(pipeline.collection_name, pipeline.lock_wait_seconds):
        collection = pipeline.store.get_collection(pipeline.collection_name)
        everything = pipeline._known(collection, None, source)
        pipeline._prune(collection, everything, keep, report)
        pipeline._finish_index(collection)
    return report.removed
