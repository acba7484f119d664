"""The relevance floor of answers, calibrated per collection and model (issue 19, item 6).

Cosines mean different things for different models: with MiniLM an unrelated question scores ~0.1 against
a collection, with e5 ~0.8, so one fixed floor either refuses everything or nothing. Each collection is
asked a fixed set of unrelated questions (``NULL_PROBES``: everyday questions, generic software questions,
keyboard mash); the best chunk's cosine for each is what "unrelated" scores there. The floor lies
``FRACTION`` of the way from that distribution's median to 1: a model whose unrelated texts already score
0.82 (e5) leaves a narrow band above it, one at 0.24 (MiniLM) a wide one. The median moves little when a
few probes happen to be on topic. Of three rules (median + robust spreads, a quantile of the probes, this
one), each with its parameter chosen on the tuning halves of the answerability set for MiniLM and e5, this
one did best there and (tied) on the held-out halves (``bench/relevance_floor.py``).

The floor is kept in the collection's row with the vectors key and chunk count it was measured at, and
measured again, on the next answer, when the model or prompts changed or the collection doubled or halved.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update

from searchsvc.errors import ProviderError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.prompts import collection_vectors_key
from searchsvc.storage.schema import Chunk, Collection
from searchsvc.store import Store

FRACTION = 0.325  # of the way from the unrelated questions' median cosine to 1
log = logging.getLogger("searchsvc.answering")
MIN_CHUNKS = 8  # fewer: the distribution says little; the model's fixed floor is used
CHECK_SECONDS = 30.0  # how long a process trusts a floor before it counts the collection's chunks again
NULL_PROBES = (
    "What is a good name for a golden retriever puppy?",
    "How many calories are in a banana?",
    "Which planet has the most moons?",
    "How do I get red wine out of a carpet?",
    "What time does the sun set in Lisbon in December?",
    "Who won the Tour de France in 1998?",
    "How do you knit a scarf for beginners?",
    "What is the plot of Pride and Prejudice?",
    "Why do cats purr?",
    "How do I repot an orchid?",
    "What is the best way to learn to juggle?",
    "How long does it take to fly from Sydney to Santiago?",
    "What are the rules of cricket's leg before wicket?",
    "How is cheese made from milk?",
    "Which wines go well with grilled salmon?",
    "What is the population of Nairobi?",
    "How do hurricanes form over the ocean?",
    "What did the ancient Egyptians eat for breakfast?",
    "How do I train for a half marathon in ten weeks?",
    "What is the difference between a violin and a viola?",
    "How should I store fresh basil?",
    "Who designed the Eiffel Tower?",
    "How do bees make honey?",
    "What should I pack for a week of camping in the rain?",
    "How do I convert a spreadsheet column of dates to weekdays?",
    "What laptop should I buy for video editing?",
    "How do I reset a forgotten Wi-Fi router password?",
    "Why does my phone battery drain so fast overnight?",
    "How do I record my screen on a Mac?",
    "What is the best free photo editing app?",
    "How do I print double-sided from a printer?",
    "How can I speed up an old gaming console?",
    "qwertyuiop asdfgh zxcvbnm",
    "lorem ipsum dolor sit amet consectetur",
    "xkcd flurb gnarp wibble zonk",
    "aaaa bbbb cccc dddd eeee",
    "1234 5678 9012 3456",
    "blorptastic frimble quanzo",
    "the the the of of and and",
    "zzzz yyyy hjkl mnbv",
)


@dataclass(frozen=True)
class Calibration:
    floor: float
    median: float  # of the probes' best cosines
    chunks: int
    vectors_key: str


def unrelated_scores(store: Store, provider: EmbeddingProvider, collection: Collection) -> list[float]:
    """The best chunk's cosine for each of ``NULL_PROBES`` in the collection (one batch of query embeddings)."""
    vectors = provider.embed_queries(list(NULL_PROBES))
    index = store.index(collection)
    scores, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1, None)
    return [float(s[0]) for s, i in zip(scores, ids, strict=True) if i[0] >= 0]


def calibrate(store: Store, provider: EmbeddingProvider, collection: Collection, chunks: int) -> Calibration:
    """Measure the collection's floor and keep it in its row (unless the row changed model meanwhile)."""
    scores = unrelated_scores(store, provider, collection)
    median = statistics.median(scores)
    found = Calibration(median + FRACTION * (1 - median), median, chunks, collection_vectors_key(collection))
    same_model = (Collection.id == collection.id) & (Collection.embedding_model == collection.embedding_model)
    with store.session() as session:
        session.execute(
            update(Collection)
            .where(same_model, Collection.vector_generation == collection.vector_generation)
            .values(relevance_floor=found.floor, floor_chunks=chunks, floor_vectors_key=found.vectors_key)
        )
        session.commit()
    return found


def stale(collection: Collection, chunks: int) -> bool:
    """Whether the recorded floor no longer describes the collection: none yet, another model or prompts, or
    a collection that doubled or halved since."""
    if collection.relevance_floor is None or collection.floor_chunks is None:
        return True
    if collection.floor_vectors_key != collection_vectors_key(collection):
        return True
    return not collection.floor_chunks / 2 < chunks < collection.floor_chunks * 2


class RelevanceFloors:
    """Each collection's calibrated floor for this process: read from its row, measured when stale (one
    measurement at a time per collection; other collections' answers do not wait for it), trusted for
    ``CHECK_SECONDS``. A measurement the provider fails is logged, and the model's fixed floor (None here)
    serves until ``CHECK_SECONDS`` later, when it is tried again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: dict[tuple[int, str], tuple[float | None, float]] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def floor(self, collection: Collection, provider: EmbeddingProvider) -> float | None:
        """The collection's floor, or None when it is too small to calibrate (or could not be measured)."""
        key = (collection.id, collection_vectors_key(collection))
        known = self._fresh(key)
        if known is not None:
            return known[0]
        with self._lock_for(key):
            known = self._fresh(key)  # measured by another thread while this one waited
            if known is not None:
                return known[0]
            value = self._measure(collection, provider)
            self._known[key] = (value, time.monotonic())
            return value

    def _fresh(self, key: tuple[int, str]) -> tuple[float | None, float] | None:
        known = self._known.get(key)
        return known if known is not None and time.monotonic() - known[1] < CHECK_SECONDS else None

    def _lock_for(self, key: tuple[int, str]) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _measure(self, collection: Collection, provider: EmbeddingProvider) -> float | None:
        chunks = self._chunks(collection)
        if chunks < MIN_CHUNKS:
            return None
        if not stale(collection, chunks):
            return collection.relevance_floor
        try:
            return calibrate(self.store, provider, collection, chunks).floor
        except ProviderError as exc:
            log.warning("the answer floor of collection %r was not measured: %s", collection.name, exc,
                        extra={"fields": {"event": "floor_not_measured", "collection": collection.name}})  # fmt: skip
            return None

    def _chunks(self, collection: Collection) -> int:
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).where(Chunk.collection_id == collection.id)) or 0)


_FLOORS: weakref.WeakKeyDictionary[Store, RelevanceFloors] = weakref.WeakKeyDictionary()
_FLOORS_LOCK = threading.Lock()


def floors_for(store: Store) -> RelevanceFloors:
    """The floors of ``store``'s collections, shared by every answer of this process on that store."""
    with _FLOORS_LOCK:
        found = _FLOORS.get(store)
        if found is None:
            found = _FLOORS[store] = RelevanceFloors(store)
        return found
