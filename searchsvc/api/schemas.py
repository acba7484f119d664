"""Request models: every field has limits, unknown fields are refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from searchsvc.api.extra_body import EXTRA_BODY_DESCRIPTION, MAX_EXTRA_BODY_KEYS, check_extra_body
from searchsvc.errors import InvalidInputError
from searchsvc.search import MAX_K, MAX_QUERY_CHARS, check_min_score

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Filter = dict[str, Any]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MIN_SCORE_DESCRIPTION = (
    "Drop results scoring below this. Vector and hybrid modes: a floor on cosine similarity, -1 to 1. "
    "Keyword mode: a floor on the keyword score, 0 or more (BM25, the same scale on SQLite and PostgreSQL)."
)


def _min_score_fits(min_score: float | None, mode: str) -> None:
    try:
        check_min_score(min_score, mode)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None


class SearchBody(Strict):
    query: str = Field(
        min_length=1, max_length=MAX_QUERY_CHARS, description="Text to search for (4,096 characters at most)."
    )
    k: int = Field(10, ge=1, le=MAX_K, description="How many results.")
    collection: str | None = Field(None, pattern=NAME_PATTERN, description="Collection; default from settings.")
    filter: Filter | None = Field(None, description='Metadata filter, e.g. {"year": {"$gte": 2020}}.')
    min_score: float | None = Field(None, allow_inf_nan=False, description=MIN_SCORE_DESCRIPTION)
    group_by: Literal["document"] | None = Field(None, description="'document': best chunk per document.")
    mode: Literal["vector", "keyword", "hybrid"] = Field("hybrid", description="Retrieval mode.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must contain some text")
        return value

    @model_validator(mode="after")
    def _floor_fits_the_mode(self) -> SearchBody:
        _min_score_fits(self.min_score, self.mode)
        return self


class DocumentIn(Strict):
    id: str = Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f]+$")
    text: str = Field(max_length=5_000_000)
    title: str | None = Field(None, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=64)


class UpsertBody(Strict):
    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)

    @field_validator("documents")
    @classmethod
    def _unique_ids(cls, docs: list[DocumentIn]) -> list[DocumentIn]:
        ids = [d.id for d in docs]
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique within one request")
        return docs


def model_name(value: str | None) -> str | None:
    """A model name is sent to providers and stored: no control characters, no lone surrogates."""
    if value is not None and any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("model names cannot contain control characters or lone surrogates")
    return value


class CollectionBody(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    embedding_model: str | None = Field(None, max_length=256, description="Default: the configured model.")
    index_type: Literal["auto", "flat", "hnsw"] | None = None

    _model_name = field_validator("embedding_model")(model_name)


class MigrationBody(Strict):
    model: str = Field(
        min_length=1, max_length=256, description="The embedding model to switch to: the local one, or an API's."
    )

    _model_name = field_validator("model")(model_name)


# A chat request key → the /v1/ask field that sets it (extra_body may not hold these).
ASK_OWN_FIELDS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "top_p": "top_p",
    "stop": "stop",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "logit_bias": "logit_bias",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
}


class GenerationParams(Strict):
    """How the chat model writes: the generation parameters of /v1/ask (and of ``searchsvc ask``)."""

    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int | None = Field(None, ge=1, le=32768, description="The most tokens the answer may take.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling: the probability mass kept.")
    stop: str | list[str] | None = Field(None, description="Up to 4 stop sequences.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    top_k: int | None = Field(None, ge=1, le=1000, description="AI/ML API extra.")
    repetition_penalty: float | None = Field(None, gt=0, le=10, description="AI/ML API extra.")
    seed: int | None = Field(None, description="Sampling seed, for providers that support it.")
    logit_bias: dict[str, float] | None = Field(None, max_length=300, description="Token id → bias, -100 to 100.")
    logprobs: bool = Field(False, description="Relay the chat model's log probability of each token it wrote.")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="Alternatives per token, with logprobs.")
    extra_body: dict[str, Any] | None = Field(None, max_length=MAX_EXTRA_BODY_KEYS, description=EXTRA_BODY_DESCRIPTION)

    @field_validator("stop")
    @classmethod
    def _stop_limits(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (len(value) > 4 or any(len(s) > 100 for s in value)):
            raise ValueError("stop takes at most 4 sequences of up to 100 characters")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and any(not key.isdigit() or not -100 <= bias <= 100 for key, bias in value.items()):
            raise ValueError("logit_bias maps token ids (digits) to biases from -100 to 100")
        return value

    @field_validator("extra_body", mode="before")
    @classmethod
    def _extra_body_fits(cls, value: Any) -> Any:
        return check_extra_body(value, ASK_OWN_FIELDS)

    def generation_params(self) -> dict[str, Any]:
        """The parameters sent, as the chat request takes them (extra_body's keys merged in, unchanged)."""
        names = ("temperature", "max_tokens", "top_p", "stop", "frequency_penalty", "presence_penalty", "top_k",
                 "repetition_penalty", "seed", "logit_bias", "top_logprobs")  # fmt: skip
        found = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return found | ({"logprobs": True} if self.logprobs else {}) | (self.extra_body or {})


class AskBody(GenerationParams):
    question: str = Field(min_length=1, max_length=4096)
    collection: str | None = Field(None, pattern=NAME_PATTERN)
    k: int = Field(8, ge=1, le=50, description="Chunks retrieved as sources.")
    mode: Literal["vector", "keyword", "hybrid"] = Field("hybrid", description="Retrieval mode for sources.")
    filter: Filter | None = None
    min_score: float | None = Field(None, allow_inf_nan=False, description=MIN_SCORE_DESCRIPTION)
    stream: bool = False
    model: str | None = Field(None, min_length=1, max_length=256, description="Chat model; default from settings.")
    models: list[str] | None = Field(None, min_length=1, max_length=5, description="Compare these chat models.")
    conversation_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    agentic: bool = Field(False, description="The chat model searches and reads the collection through tools.")
    max_steps: int | None = Field(None, ge=1, le=16, description="Agentic rounds of tool calls (default 4).")

    @model_validator(mode="after")
    def _agentic_alone(self) -> AskBody:
        if self.models and self.agentic:
            raise ValueError("agentic answers come from one model: leave out models, or agentic")
        if self.models and self.stream:
            raise ValueError("models are compared side by side, whole: leave out stream, or models")
        if self.max_steps is not None and not self.agentic:
            raise ValueError("max_steps applies to agentic answers: send agentic: true with it")
        if self.logprobs and (self.agentic or self.models):
            raise ValueError("logprobs are relayed for an answer written in one call: leave out agentic and models")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: list[str] | None) -> list[str] | None:
        if value and any(not m or len(m) > 256 for m in value):
            raise ValueError("model names must be 1 to 256 characters")
        for name in value or []:
            model_name(name)
        return value

    _model_name = field_validator("model")(model_name)

    @model_validator(mode="after")
    def _floor_fits_the_mode(self) -> AskBody:
        _min_score_fits(self.min_score, self.mode)
        return self
