"""``POST /v1/chat/completions``: the request as OpenAI's SDK sends it, and the response shapes.

Unknown fields are kept (``extra="allow"``): a provider's model gets the body as sent, and a
``rag:<collection>`` model passes every generation parameter it does not refuse on to its chat model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from searchsvc.api.schemas import MIN_SCORE_DESCRIPTION, Filter, model_name

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessageIn(Open):
    role: Role
    content: str | list[dict[str, Any]] | None = Field(None, description="Text, or content parts.")


class StreamOptions(Open):
    include_usage: bool = Field(False, description="Send token usage in a last chunk with no choices.")


class RagOptions(BaseModel):
    """searchsvc's extension for ``rag:`` models (the SDK's ``extra_body={"searchsvc": {...}}``)."""

    model_config = ConfigDict(extra="forbid")
    chat_model: str | None = Field(None, min_length=1, max_length=256, description="Chat model that writes.")
    k: int = Field(8, ge=1, le=50, description="Chunks retrieved as sources.")
    mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    filter: Filter | None = Field(None, description="searchsvc's filter language, as /v1/search takes it.")
    min_score: float | None = Field(None, allow_inf_nan=False, description=MIN_SCORE_DESCRIPTION)

    _chat_model_name = field_validator("chat_model")(model_name)


class ChatCompletionBody(Open):
    model: str = Field(min_length=1, max_length=256, description="`rag:<collection>` or a provider's chat model.")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    searchsvc: RagOptions | None = Field(None, description="Retrieval options of a `rag:` model (extension).")

    @field_validator("stop")
    @classmethod
    def _stop_limits(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return value


class FileCitationOut(BaseModel):
    file_id: str = Field(description="The uploaded file's id, or the document's key when it came from no file.")
    filename: str
    title: str | None
    quote: str = Field(description="The sentence of the source that supports the claim, verbatim.")
    source: int = Field(description="The number of the source (the `[n]` in the text).")
    start_index: int = Field(description="Where the `[n]` marker starts in the message content.")
    end_index: int


class AnnotationOut(BaseModel):
    type: Literal["file_citation"]
    file_citation: FileCitationOut


class AssistantMessageOut(Open):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None
    annotations: list[AnnotationOut] | None = None


class ChoiceOut(Open):
    index: int
    message: AssistantMessageOut
    finish_reason: str | None
    logprobs: Any = None


class UsageOut(Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RagDetailsOut(BaseModel):
    """The extension field of a `rag:` model's answer: what was retrieved and what the answer cites."""

    mode: str = Field(description="'generative' (a chat model wrote it) or 'extractive' (quoted sentences).")
    answered: bool = Field(description="False for 'I don't know'.")
    standalone_query: str = Field(description="The query retrieved with (the last question, rewritten).")
    sources: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    invalid_citations: int
    model_substituted: dict[str, str] | None = Field(
        None, description="`{requested, answered}` when the chat server answered with another model than asked."
    )


class ChatCompletionOut(Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut | None = None
    searchsvc: RagDetailsOut | None = Field(None, description="Set on `rag:` models' answers (extension).")
