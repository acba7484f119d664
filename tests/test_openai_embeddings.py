"""``POST /v1/embeddings``, driven by the official openai SDK against a real `searchsvc serve`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

from tests.conftest import cli_env, make_settings
from tests.servers import serving

pytestmark = pytest.mark.openai_compat


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("embeddings"))
    with serving(cli_env(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def test_the_local_model_embeds_texts_in_floats_and_base64(client: OpenAI) -> None:
    as_base64 = client.embeddings.create(model="all-MiniLM-L6-v2", input=["Quokkas live on islands.", "Redis"])
    as_floats = client.embeddings.create(
        model="local", input=["Quokkas live on islands.", "Redis"], encoding_format="float"
    )
    assert as_base64.model == "all-MiniLM-L6-v2" and [d.index for d in as_base64.data] == [0, 1]
    first = np.array(as_base64.data[0].embedding)
    assert first.shape == (384,) and abs(np.linalg.norm(first) - 1) < 1e-5
    assert np.allclose(first, as_floats.data[0].embedding, atol=1e-6)
    assert as_base64.usage.prompt_tokens == as_base64.usage.total_tokens > 0


def test_a_collections_name_embeds_with_the_model_its_search_uses(client: OpenAI, base_url: str) -> None:
    """The cosine of the returned vectors is the vector_score searchsvc's own search reports."""
    native = base_url.removesuffix("/v1")
    doc = {"id": "q", "title": "Quokkas", "text": "Quokkas are small marsupials that live on Rottnest Island."}
    httpx.post(f"{native}/v1/collections/animals/documents", json={"documents": [doc]}, timeout=60).raise_for_status()
    query = "Where do quokkas live?"
    embedded = f"{doc['title']}\n{doc['text']}"  # what the chunker embeds: the title, then the text
    vectors = client.embeddings.create(model="animals", input=[query, embedded]).data
    cosine = float(np.dot(vectors[0].embedding, vectors[1].embedding))
    hit = httpx.post(f"{native}/v1/search", json={"query": query, "collection": "animals", "mode": "vector"}).json()
    assert abs(hit["results"][0]["vector_score"] - cosine) < 1e-4


def test_what_cannot_be_embedded_is_a_400_naming_the_field(client: OpenAI) -> None:
    cases = [
        ({"model": "local", "input": [[1, 2, 3]]}, "input", "token ids are not accepted"),
        ({"model": "local", "input": "word " * 400}, "input", "over the 254"),
        ({"model": "local", "input": "x", "dimensions": 128}, "dimensions", "384 dimensions"),
        ({"model": "text-embedding-3-small", "input": "x"}, "model", "without an API only the local model"),
        ({"model": "local", "input": []}, "input", "holds no text"),
    ]
    for body, param, says in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(**body)
        assert refused.value.body["param"] == param and says in refused.value.body["message"], refused.value.body
