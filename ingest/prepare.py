"""A found document made ready to store: parsed, chunked, each chunk's embedded text hashed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ingest.chunker import Chunker
from ingest.document import SourceDocument
from searchsvc.storage import repository as repo


@dataclass
class Prepared:
    source: SourceDocument
    new: repo.NewDocument
    embed_texts: list[tuple[str, str, int]]  # (hash, text, tokens)
    status: str  # added, changed or renamed
    replaces: int | None = None  # renamed: the row of the document it was (its file gone), replaced in place
    renamed_from: str | None = None  # renamed: the path it had


def file_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def prepare_document(source: SourceDocument, chunker: Chunker, fingerprint: str, status: str) -> Prepared | None:
    """Parse and chunk a document; None when it has no text to index.

    A title of the document's own (a record's, a Markdown or HTML title) heads every chunk's embedded
    text; a title that is only the file's name is shown but not embedded, so renaming a file changes no
    vector (and a renamed, edited file pays only for the chunks whose text changed)."""
    parsed = source.load()
    own_title = source.title or parsed.title
    spans = chunker.chunk(parsed, own_title)
    del parsed  # the chunks hold their text; the whole document need not stay in memory
    if not spans:
        return None
    chunks, embed_texts = [], []
    for ordinal, span in enumerate(spans):
        text_hash = hashlib.sha256(span.embed_text.encode("utf-8", "surrogatepass")).hexdigest()
        embed_texts.append((text_hash, span.embed_text, span.token_count))
        chunks.append(
            repo.NewChunk(
                ordinal=ordinal,
                text=span.text,
                embed_hash=text_hash,
                token_count=span.token_count,
                start_char=span.start,
                end_char=span.end,
                line_start=span.line_start,
                line_end=span.line_end,
                page=span.page,
                heading_path=list(span.heading_path),
            )
        )
    new = repo.NewDocument(
        key=source.key,
        source=source.source,
        path=source.path,
        title=own_title or file_name(source.key),
        content_hash=fingerprint,
        metadata=source.metadata,
        chunks=chunks,
    )
    return Prepared(source, new, embed_texts, status)
