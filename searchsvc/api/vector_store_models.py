"""Request bodies of the Vector Stores routes, as the official openai-python SDK sends them
(``types/vector_store_create_params.py``, ``vector_stores/file_create_params.py``, ...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from searchsvc.api.openai_models import ID_PATTERN
from searchsvc.vector_stores.files import Chunking

MAX_FILES = 2000
FileId = Annotated[str, Field(pattern=ID_PATTERN, description="An uploaded file's id.")]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character in text
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
Text = Annotated[str, Field(max_length=512, pattern=NO_NUL)]
Attributes = Annotated[dict[Key, Text | bool | int | float], Field(max_length=16)]
Metadata = Annotated[dict[Key, Text], Field(max_length=16)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticChunking(Body):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(Body):
    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static_needs_sizes(self) -> ChunkingStrategy:
        if (self.type == "static") != (self.static is not None):
            raise ValueError('"static" chunking needs the "static" sizes; "auto" takes none')
        return self

    def chunking(self) -> Chunking:
        if self.static is None:
            return Chunking()
        return Chunking(self.static.max_chunk_size_tokens, self.static.chunk_overlap_tokens)


class ExpiresAfter(Body):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class VectorStoreCreate(Body):
    name: str | None = Field(None, max_length=256, pattern=NO_NUL)
    description: str | None = Field(None, max_length=512, pattern=NO_NUL)
    metadata: Metadata | None = None
    file_ids: list[FileId] | None = Field(None, max_length=MAX_FILES)
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None


class VectorStoreUpdate(Body):
    name: str | None = Field(None, max_length=256, pattern=NO_NUL)
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None


class FileCreate(Body):
    file_id: FileId
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class FileUpdate(Body):
    attributes: Attributes | None


class FileBatchCreate(Body):
    file_ids: list[FileId] | None = Field(None, min_length=1, max_length=MAX_FILES)
    files: list[FileCreate] | None = Field(None, min_length=1, max_length=MAX_FILES)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None

    @model_validator(mode="after")
    def _one_form(self) -> FileBatchCreate:
        if (self.file_ids is None) == (self.files is None):
            raise ValueError('give exactly one of "file_ids" and "files"')
        return self


class RankingOptions(Body):
    ranker: Literal["auto", "default-2024-11-15", "none"] = "auto"
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)


class SearchBody(Body):
    query: (
        Annotated[str, Field(min_length=1, max_length=4096)]
        | Annotated[list[Annotated[str, Field(min_length=1, max_length=4096)]], Field(min_length=1, max_length=10)]
    )
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
