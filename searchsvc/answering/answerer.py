"""Retrieval-augmented answers with numbered citations that point at real chunks.

One flow, ``events``: rewrite a follow-up into a standalone query, retrieve, keep the sources relevant
enough to use, let the answer model write from them, keep only citations that name a source, remember
the turn. ``stream`` sends its events as they come; ``answer`` collects them into one ``Answer``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from searchsvc.answering.agent import AgentLoop
from searchsvc.answering.answer_models import AnswerModel, ChatAnswerModel, Draft, Refusal, answer_model
from searchsvc.answering.conversation import ConversationMemory
from searchsvc.answering.types import Answer, AnswerEvent, AnswerSource, AskRequest, Citation
from searchsvc.citations import best_quote, claims_by_citation
from searchsvc.config import Settings
from searchsvc.errors import InvalidInputError, ProviderError
from searchsvc.providers.base import EmbeddingProvider
from searchsvc.providers.chat import ChatProvider
from searchsvc.relevance_floor import floors_for
from searchsvc.search import search
from searchsvc.store import Store
from searchsvc.textclean import clean_text
from searchsvc.vector_stores.searching import normalised


class Answerer:
    """Answers questions over one store with one embedder and an answer model (chat or extractive)."""

    def __init__(
        self,
        store: Store,
        embedder: EmbeddingProvider,
        chat: ChatProvider | None,
        settings: Settings,
        embedders: Mapping[str, EmbeddingProvider] | None = None,
    ):
        self.store = store
        self.embedder = embedder
        self.embedders = dict(embedders or {})  # the embedder of each of a request's ``also`` collections
        self.settings = settings
        self.model: AnswerModel = answer_model(chat, embedder, settings)
        self.memory = ConversationMemory(store)

    @property
    def mode(self) -> str:
        return self.model.mode

    def answer(self, request: AskRequest) -> Answer:
        """A complete answer (or, with ``models`` and a chat model, one answer per model side by side)."""
        if request.models and isinstance(self.model, ChatAnswerModel):
            return self.compare(request)
        done = [event for event in self.events(request, live=False) if event.name == "done"]
        assert done and done[0].answer is not None
        return done[0].answer

    def stream(self, request: AskRequest) -> Iterator[AnswerEvent]:
        """Events as the answer is written: ``sources``, ``delta`` pieces, then ``done`` (or ``error`` if cut)."""
        return self.events(request, live=True)

    def events(self, request: AskRequest, live: bool) -> Iterator[AnswerEvent]:
        if request.agentic:
            yield from self._agentic(request, live)
            return
        question, query, rewrite_usage = self._question_and_query(request)
        draft = self._draft(request, question, query, live)
        answer = Answer(question, query, self.mode, draft.reply.answered, draft.sources)
        answer.rewrite_usage = rewrite_usage
        yield AnswerEvent("sources", answer)
        if (yield from written_events(draft, answer, live)):
            self._complete(answer, draft, request)
            yield AnswerEvent("done", answer)

    def _agentic(self, request: AskRequest, live: bool) -> Iterator[AnswerEvent]:
        """The model searches and reads through tools (answering/agent.py); the thread is shown to it as is."""
        if not isinstance(self.model, ChatAnswerModel):
            raise InvalidInputError(
                "agentic answers need a chat model that calls tools: set AIMLAPI_API_KEY (or SEARCHSVC_BASE_URL "
                "and its key), or ask without agentic"
            ).at("agentic")
        question = clean_text(request.question)
        history = list(request.history) if request.history is not None else self.memory.history(request.conversation_id)
        loop = AgentLoop(self.store, self.embedder, self.model.chat, self.settings)
        for event in loop.events(request, question, history, self.citations, live):
            if event.name == "done" and request.conversation_id is not None:
                answer = event.answer
                citations = [c.as_dict() for c in answer.citations]
                answer.conversation_id = self.memory.remember(request.conversation_id, request.collection, question,
                                                              question, answer.text or "", citations)  # fmt: skip
            yield event

    def compare(self, request: AskRequest) -> Answer:
        """The same sources answered by each of ``request.models``, side by side (not remembered)."""
        question, query, _ = self._question_and_query(request)
        sources = self.retrieve(query, request)
        if not sources:
            answer = Answer(question, query, self.mode, False, [])
            self._complete(answer, Refusal([]), request)
            return answer
        prompt_question = self._prompt_question(request, question, query)
        models = request.models or []
        drafts = {m: self.model.draft(prompt_question, sources, m, request.params, False) for m in models}
        for draft in drafts.values():
            draft.collection = request.collection

        def one(model: str) -> dict[str, Any]:
            draft = drafts[model]
            try:
                text = "".join(draft.pieces())
            except ProviderError as exc:
                return {"model": model, "error": {"code": exc.code, "message": str(exc)}}
            reply = draft.reply
            return {
                "answer": text,
                "invalid_citations": reply.invalid_citations,
                "model": reply.model,
                **({"model_substituted": reply.model_substituted} if reply.model_substituted else {}),
                "usage": reply.usage,
                "latency_ms": reply.latency_ms,
                "citations": [c.as_dict() for c in self.citations(text, draft.sources, reply.cited)],
            }

        with ThreadPoolExecutor(max_workers=min(8, len(drafts))) as pool:
            answers = list(pool.map(one, drafts))
        used = next(iter(drafts.values())).sources
        return Answer(question, query, self.mode, True, used, answers=answers)

    def retrieve(self, query: str, request: AskRequest) -> list[AnswerSource]:
        """Sources for an answer, from the request's collection and any ``also`` collections (their hits
        merged by cosine similarity, each store's own floor applied, the best ``k`` kept). The default floor
        is on cosine similarity, so it applies in vector and hybrid modes; keyword scores have another scale
        (BM25) and get no default floor."""
        hits = []
        for collection in (request.collection, *request.also):
            embedder = self.embedder if collection == request.collection else self.embedders[collection]
            floor = request.min_score
            if floor is None and request.mode != "keyword":
                floor = self.default_floor(collection, embedder)
            hits += search(self.store, embedder, collection, query, request.k, filter=request.filter,
                           min_score=floor, mode=request.mode).hits  # fmt: skip
        if request.also:  # hybrid scores are ranks fused, equal for each store's first: merged by cosine instead
            hits = sorted(hits, key=lambda hit: -(hit.vector_score if hit.vector_score is not None else -1))
            hits = hits[: request.k]
        if request.score_threshold > 0:
            hits = [hit for hit in hits if normalised(hit) >= request.score_threshold]
        return [AnswerSource(number, hit) for number, hit in enumerate(hits, start=1)]

    def default_floor(self, collection: str, embedder: EmbeddingProvider) -> float:
        """SEARCHSVC_ANSWER_MIN_SCORE when set, else the collection's calibrated floor (``relevance_floor``),
        else (a collection too small to calibrate) the model's fixed floor."""
        if self.settings.answer_min_score is not None:
            return self.settings.answer_min_score
        calibrated = floors_for(self.store).floor(self.store.collection_for(collection, embedder), embedder)
        return calibrated if calibrated is not None else self.settings.answer_floor(embedder.model)

    def citations(self, text: str, sources: list[AnswerSource], cited: list[int]) -> list[Citation]:
        """The cited sources, in order of first use, each quoted where it supports its claim."""
        by_number = {s.number: s for s in sources}
        claims = claims_by_citation(text)
        return [Citation(by_number[n], best_quote(by_number[n].text, claims.get(n, text))) for n in cited]

    def _question_and_query(self, request: AskRequest) -> tuple[str, str, dict[str, Any]]:
        """The cleaned question, the query to retrieve with (rewritten when it follows up a thread), and the
        tokens the rewriting cost. The thread is the caller's (``history``) or the remembered conversation."""
        question = clean_text(request.question)
        remembered = request.history is None
        history = self.memory.history(request.conversation_id) if remembered else list(request.history or ())
        if not history:
            return question, question, {}
        query, usage = self.model.rewrite(history, question, request.model)
        return question, query, usage

    def _draft(self, request: AskRequest, question: str, query: str, live: bool) -> Draft:
        sources = self.retrieve(query, request)
        if not sources and not request.params.get("tools"):
            return Refusal([])  # (offered functions, the model may answer with them)
        prompt_question = self._prompt_question(request, question, query)
        turns = list(request.tool_turns)
        draft = self.model.draft(prompt_question, sources, request.model, request.params, live, request.instructions,
                                 turns)  # fmt: skip
        draft.collection = request.collection
        return draft

    @staticmethod
    def _prompt_question(request: AskRequest, question: str, query: str) -> str:
        """The user's question as asked; a follow-up also in its standalone form (the model is not shown the
        thread), which never takes the question's place."""
        follow_up = (request.conversation_id or request.history) and query.strip() != question.strip()
        return f"{question}\n(In full: {query})" if follow_up else question

    def _complete(self, answer: Answer, draft: Draft, request: AskRequest) -> None:
        reply = draft.reply
        answer.text, answer.invalid_citations = reply.text, reply.invalid_citations
        answer.model, answer.usage, answer.latency_ms = reply.model, reply.usage, reply.latency_ms
        answer.finish_reason, answer.tool_calls, answer.answered = reply.finish_reason, reply.tool_calls, reply.answered
        answer.logprobs, answer.model_substituted = reply.logprobs, reply.model_substituted
        answer.citations = self.citations(reply.text, draft.sources, reply.cited)
        if request.conversation_id is not None and reply.text and not reply.tool_calls:  # calls: not a turn yet
            citations = [c.as_dict() for c in answer.citations]
            answer.conversation_id = self.memory.remember(
                request.conversation_id,
                request.collection,
                answer.question,
                answer.standalone_query,
                reply.text,
                citations,
            )


def written_events(draft: Draft, answer: Answer, live: bool) -> Generator[AnswerEvent, None, bool]:
    """A draft's text as ``delta`` events; False when a provider cut it after the first words (then the last
    event is an ``error``: what was sent cannot be taken back)."""
    written = False
    try:
        for piece in draft.pieces():
            if piece:
                written = True
                yield AnswerEvent("delta", answer, text=piece)
    except ProviderError as exc:
        if not live or not written:
            raise  # nothing was written: the caller gets the provider's error itself
        answer.answered = False
        yield AnswerEvent("error", answer, error={"code": "stream_cut", "message": f"the answer was cut: {exc}"})
        return False
    return True


def opening_events(events: Iterator[AnswerEvent], to_sources: bool = False) -> list[AnswerEvent]:
    """The events up to the first piece of text: until then a failure (the rewrite, retrieval, the chat API
    refusing) can still be answered as a plain HTTP error, not a 200 whose stream ends in an error.
    ``to_sources``: only up to the sources (a model offered functions may call them without a word, so its
    whole reply would come before the response started)."""
    opened = []
    for event in events:
        opened.append(event)
        if event.name != "sources" or to_sources:
            break
    return opened
