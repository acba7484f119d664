"""Answers with citations: the request and result types, prompt building, conversation memory, the
answer models (chat, or extractive in its place) and the answerer that runs them."""

from searchsvc.answering.answerer import Answerer
from searchsvc.answering.types import Answer, AnswerEvent, AnswerSource, AskRequest, Citation

__all__ = ["Answer", "AnswerEvent", "AnswerSource", "Answerer", "AskRequest", "Citation"]
