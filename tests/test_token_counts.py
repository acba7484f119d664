"""Tokens counted with the model's own tokenizer (issue 19, item 4): ``SEARCHSVC_TOKENIZERS`` gives an API model
its tokenizer.json; without one, cl100k_base stands in and is checked against the server's
``usage.prompt_tokens``, counting more (so chunks fit) when the server counts more."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from ingest.chunker import Chunker
from ingest.parsers.text import parse_text
from searchsvc.errors import ConfigError
from searchsvc.providers import make_embedding_provider
from searchsvc.providers.local import find_model_dir
from searchsvc.providers.token_counting import TiktokenCounter
from tests.conftest import remote_settings
from tests.fake_openai import FakeOpenAI, token_count

MODEL = "some-sentencepiece-model"  # not one of OpenAI's: no encoding known for it (and no prompts)
TEXT = " ".join(f"Paragraph {n}: Redis keeps its dataset in memory and persists it with snapshots." for n in range(40))


def _wordpiece() -> tuple[Path, Tokenizer]:
    path = find_model_dir(None) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    return path, tokenizer


def test_a_configured_tokenizer_counts_what_the_server_counts(tmp_path: Path, fake_openai: FakeOpenAI, caplog) -> None:
    path, tokenizer = _wordpiece()
    fake_openai.usage_tokens = lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, tokenizers={MODEL: str(path)})
    provider = make_embedding_provider(settings)
    texts = [TEXT[:900], TEXT[900:2000]]
    with caplog.at_level(logging.WARNING, logger="searchsvc.provider"):
        provider.embed_documents(texts)
    reported = fake_openai.embedding_requests()[-1]
    assert sum(provider.tokenizer.count(texts)) == sum(fake_openai.usage_tokens(t) for t in reported.body["input"])
    assert provider.tokenizer.ratio == 1.0 and "counted" not in caplog.text


def test_a_server_that_counts_more_makes_the_chunks_that_follow_fit_it(
    tmp_path: Path, fake_openai: FakeOpenAI, caplog
) -> None:
    fake_openai.usage_tokens = lambda text: math.ceil(token_count(text) * 1.25) + 2  # a tokenizer 25 % finer
    provider = make_embedding_provider(remote_settings(tmp_path, fake_openai, embedding_model=MODEL))
    chunker = Chunker(provider.tokenizer, 100, 10)
    before = [fake_openai.usage_tokens(c.embed_text) for c in chunker.chunk(parse_text(TEXT))]
    with caplog.at_level(logging.WARNING, logger="searchsvc.provider"):
        provider.embed_documents([TEXT[:1200], TEXT[1200:2400]])
    assert "counted" in caplog.text and "SEARCHSVC_TOKENIZERS" in caplog.text
    assert 1.2 < provider.tokenizer.ratio < 1.3
    after = [fake_openai.usage_tokens(c.embed_text) for c in chunker.chunk(parse_text(TEXT))]
    assert max(before) > 110 and max(after) <= 100 + 2 + 2, (before, after)  # the server's count now fits


def test_a_server_that_counts_fewer_is_reported_and_left_alone(tmp_path: Path, fake_openai: FakeOpenAI, caplog) -> None:
    fake_openai.usage_tokens = lambda text: token_count(text) // 2
    provider = make_embedding_provider(remote_settings(tmp_path, fake_openai, embedding_model=MODEL))
    with caplog.at_level(logging.WARNING, logger="searchsvc.provider"):
        provider.embed_documents([TEXT[:1200]])
    assert "counted" in caplog.text and provider.tokenizer.ratio == 1.0


def test_openai_models_and_named_encodings_need_no_check(tmp_path: Path, fake_openai: FakeOpenAI, caplog) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, tokenizers={MODEL: "o200k_base"})
    provider = make_embedding_provider(settings)
    assert isinstance(provider.tokenizer.inner, TiktokenCounter) and provider.tokenizer.inner.name == "o200k_base"
    fake_openai.dimension = 1536  # text-embedding-3-small's
    openai = make_embedding_provider(remote_settings(tmp_path, fake_openai, embedding_model="text-embedding-3-small"))
    with caplog.at_level(logging.WARNING, logger="searchsvc.provider"):
        openai.embed_documents([TEXT[:1200]])  # the fake counts as OpenAI does: they agree
    assert openai.tokenizer.ratio == 1.0 and "counted" not in caplog.text


def test_a_tokenizer_that_is_not_there_is_a_config_error(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, tokenizers={MODEL: str(tmp_path / "x")})
    with pytest.raises(ConfigError, match=r"SEARCHSVC_TOKENIZERS.*no tokenizer\.json there"):
        make_embedding_provider(settings)
