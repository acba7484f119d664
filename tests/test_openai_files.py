"""The Files API, driven by the official openai SDK against a real `searchsvc serve` (only base_url changes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import SAMPLE_DATA, cli_env, make_settings
from tests.servers import serving

pytestmark = pytest.mark.openai_compat

WRITER, READER = "sk-test-rw", "sk-test-ro"
MAX_FILE_BYTES = 300_000


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("files"))
    keys = f"{WRITER}:rw,{READER}:ro"
    env = cli_env(
        settings,
        SEARCHSVC_API_KEYS=keys,
        SEARCHSVC_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        SEARCHSVC_MAX_BODY_BYTES="100000",
    )
    with serving(env) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key=WRITER, max_retries=0)


def test_a_markdown_file_is_uploaded_described_downloaded_and_deleted(client: OpenAI) -> None:
    path = SAMPLE_DATA / "markdown/redis/README.md"
    uploaded = client.files.create(file=path.open("rb"), purpose="assistants")
    assert uploaded.id.startswith("file-") and uploaded.object == "file"
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("README.md", path.stat().st_size, "assistants")
    assert uploaded.status == "processed" and uploaded.created_at > 0
    assert client.files.retrieve(uploaded.id) == uploaded
    content = client.files.content(uploaded.id)
    assert content.content == path.read_bytes() and content.response.headers["content-type"].startswith("text/markdown")
    assert uploaded.id in [f.id for f in client.files.list(purpose="assistants")]
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(uploaded.id)
    assert missing.value.body["type"] == "not_found_error" and uploaded.id in missing.value.body["message"]


def test_every_supported_type_is_accepted(client: OpenAI) -> None:
    pdf = SAMPLE_DATA / "pdf/shared-mime-info-spec.pdf"
    records = b'{"id": "a", "text": "alpha"}\n\n{"id": "b", "text": "beta", "metadata": {"k": 1}}\n'
    uploads = {
        "notes.txt": b"plain text\n",
        "page.html": b"<html><body><h1>Title</h1><p>Body</p></body></html>",
        "records.jsonl": records,
        pdf.name: pdf.read_bytes(),
    }
    for name, data in uploads.items():
        uploaded = client.files.create(file=(name, data), purpose="user_data")
        assert (uploaded.filename, uploaded.bytes) == (name, len(data))
        assert client.files.content(uploaded.id).content == data


def test_listing_pages_with_cursors_in_both_orders(client: OpenAI) -> None:
    ids = [client.files.create(file=(f"page-{n}.txt", b"x %d" % n), purpose="user_data").id for n in range(5)]
    newest_first = [f.id for f in client.files.list(purpose="user_data", limit=2)]  # the SDK follows has_more
    assert newest_first[:5] == ids[::-1]
    first = client.files.list(purpose="user_data", limit=2)
    assert [f.id for f in first.data] == ids[:2:-1] and first.has_more
    following = client.files.list(purpose="user_data", limit=2, after=first.data[-1].id)
    assert [f.id for f in following.data] == [ids[2], ids[1]]
    oldest_first = client.files.list(purpose="user_data", order="asc", after=ids[0], limit=3)
    assert [f.id for f in oldest_first.data] == ids[1:4]
    before = client.files.list(purpose="user_data", limit=2, extra_query={"before": ids[1]})  # as vector stores take it
    assert [f.id for f in before.data] == [ids[3], ids[2]]  # the page just before the cursor, newest first


@pytest.mark.parametrize(
    ("name", "data", "code", "says"),
    [
        ("image.png", b"\x89PNG\r\n", "unsupported_file", "unsupported file type .png"),
        ("empty.md", b"  \n", "invalid_file", "is empty"),
        ("fake.pdf", b"just text", "invalid_file", "not a PDF"),
        ("binary.txt", b"\x00\x01\x00\x02\x00" * 100, "invalid_file", "binary content"),
        ("bad.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b"}\n', "invalid_file", "bad.jsonl line 2"),
        ("twice.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "invalid_file", "appears twice"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_refused_and_not_stored(client, name, data, code, says) -> None:
    before = {f.id for f in client.files.list()}
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=(name, data), purpose="assistants")
    error = refused.value.body
    assert (error["code"], error["type"], error["param"]) == (code, "invalid_request_error", "file")
    assert says in error["message"]
    assert {f.id for f in client.files.list()} == before


def test_errors_have_openais_shape_for_400_401_403_404_and_413(client: OpenAI, base_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("a.md", b"# A"), purpose="fine-tune")
    assert purpose.value.body["param"] == "purpose" and "'assistants' or 'user_data'" in purpose.value.body["message"]
    with pytest.raises(openai.BadRequestError) as limit:
        client.files.list(limit=0)
    assert limit.value.body["param"] == "limit"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0).files.list()
    reader = OpenAI(base_url=base_url, api_key=READER, max_retries=0)
    reader.files.list()
    with pytest.raises(openai.PermissionDeniedError) as forbidden:
        reader.files.create(file=("a.md", b"# A"), purpose="assistants")
    assert forbidden.value.body["type"] == "permission_error"
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-doesnotexist")
    with pytest.raises(openai.APIStatusError) as too_large:
        client.files.create(file=("big.txt", b"x" * (MAX_FILE_BYTES + 1)), purpose="assistants")
    assert too_large.value.status_code == 413 and "SEARCHSVC_MAX_FILE_BYTES" in too_large.value.body["message"]
    raw = httpx.get(f"{base_url}/files/file-doesnotexist", headers={"Authorization": f"Bearer {WRITER}"})
    assert raw.status_code == 404
    assert set(json.loads(raw.text)["error"]) >= {"message", "type", "param", "code"}


def test_uploads_may_exceed_the_body_limit_of_other_routes(client: OpenAI, tmp_path: Path) -> None:
    """A file up to SEARCHSVC_MAX_FILE_BYTES is taken even when that is over SEARCHSVC_MAX_BODY_BYTES."""
    data = (b"word " * 20 + b"\n") * (MAX_FILE_BYTES // 101)
    assert client.files.create(file=("large.txt", data), purpose="assistants").bytes == len(data)
