"""Renamed and moved files keep their documents and vectors (issue 18, part 1), against the fake API,
which counts every text it embeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from searchsvc.config import Settings
from searchsvc.doctor import check_collection
from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.schema import Chunk, Document
from searchsvc.store import Store
from tests.conftest import MODEL, remote_settings, run_ingest
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.ingest_lead

PARAGRAPHS = [
    f"Paragraph {n} tells of the zebracorn{n} herd grazing on plateau {n}, "
    + " ".join(f"word{n}x{m}" for m in range(120))
    for n in range(6)
]


def _settings(tmp_path: Path, fake: FakeOpenAI) -> Settings:
    return remote_settings(tmp_path, fake, embedding_model=MODEL, chunk_tokens=200, chunk_overlap=0)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "zebracorn-field-notes.txt").write_text("\n\n".join(PARAGRAPHS))
    (folder / "guide.md").write_text("# Herding Guide\n\nKeep the herd together near the unicornwater.\n")
    (folder / "other.txt").write_text("Something else entirely, about teapots.\n")
    return folder


def _documents(settings: Settings) -> dict[str, tuple[int, str | None, list[int]]]:
    """key -> (row id, title, chunk ids)."""
    store = Store(settings)
    try:
        with store.session() as session:
            rows = session.execute(select(Document.id, Document.key, Document.title)).all()
            return {
                key: (row_id, title, list(session.scalars(select(Chunk.id).where(Chunk.document_id == row_id))))
                for row_id, key, title in rows
            }
    finally:
        store.close()


def _hit_paths(settings: Settings, query: str, mode: str) -> set[str | None]:
    store, provider = Store(settings), make_embedding_provider(settings)
    try:
        return {hit.path for hit in search(store, provider, "docs", query, k=10, mode=mode).hits}
    finally:
        store.close()
        provider.close()


def _assert_consistent(settings: Settings) -> None:
    store = Store(settings)
    try:
        assert check_collection(store, store.get_collection("docs")).problems == []
    finally:
        store.close()


@pytest.mark.parametrize("prune", [False, True])
def test_a_renamed_file_keeps_its_document_and_vectors_and_leaves_no_hit_at_the_old_path(
    tmp_path: Path, fake_openai: FakeOpenAI, prune: bool
) -> None:
    settings, folder = _settings(tmp_path, fake_openai), _folder(tmp_path)
    run_ingest(settings, folder, prune=prune)
    before = _documents(settings)
    sent = sum(fake_openai.embedded_inputs.values())
    old, new = folder / "zebracorn-field-notes.txt", folder / "sub" / "plateau-log.txt"
    old.rename(new)
    (folder / "guide.md").rename(folder / "sub" / "herding.md")

    report = run_ingest(settings, folder, prune=prune)

    assert (report.added, report.changed, report.removed, report.renamed, report.unchanged) == (0, 0, 0, 2, 1)
    assert {"from": str(old), "to": str(new), "changed": False} in report.renames
    assert sum(fake_openai.embedded_inputs.values()) == sent  # nothing embedded again
    after = _documents(settings)
    assert after["notes/sub/plateau-log.txt"][0::2] == before["notes/zebracorn-field-notes.txt"][0::2]
    assert after["notes/sub/plateau-log.txt"][1] == "plateau-log.txt"  # the title was the file name
    assert after["notes/sub/herding.md"][1] == "Herding Guide"  # the title was the document's own
    assert len(after) == 3 and "notes/zebracorn-field-notes.txt" not in after
    for mode in ("vector", "keyword", "hybrid"):
        assert str(old) not in _hit_paths(settings, "zebracorn3 herd grazing on plateau", mode)
    assert _hit_paths(settings, "plateau log", "keyword") == {str(new)}  # the keyword index has the new title
    assert _hit_paths(settings, "zebracorn field notes", "keyword") - {str(new)} == set()
    _assert_consistent(settings)


def test_a_renamed_and_edited_file_pays_only_for_the_chunks_whose_text_changed(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings, folder = _settings(tmp_path, fake_openai), _folder(tmp_path)
    run_ingest(settings, folder)
    chunks_before = len(_documents(settings)["notes/zebracorn-field-notes.txt"][2])
    assert chunks_before >= 4
    fake_openai.embedded_inputs.clear()
    old, new = folder / "zebracorn-field-notes.txt", folder / "renamed-notes.txt"
    edited = list(PARAGRAPHS)
    edited[-1] = "The last paragraph was rewritten: the zebracorn herd moved to the valley of teacups."
    new.write_text("\n\n".join(edited))
    old.unlink()

    report = run_ingest(settings, folder)

    assert (report.added, report.renamed, report.unchanged) == (0, 1, 2)
    assert report.renames == [{"from": str(old), "to": str(new), "changed": True}]
    resent = fake_openai.embedded_inputs
    assert 1 <= sum(resent.values()) <= 2 and all("valley of teacups" in text for text in resent), resent
    assert set(_documents(settings)) == {"notes/renamed-notes.txt", "notes/guide.md", "notes/other.txt"}
    assert _hit_paths(settings, "valley of teacups", "keyword") == {str(new)}
    _assert_consistent(settings)


def test_a_copy_is_a_new_document_and_a_file_edited_past_recognition_is_added(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    settings, folder = _settings(tmp_path, fake_openai), _folder(tmp_path)
    run_ingest(settings, folder)
    shutil.copy(folder / "zebracorn-field-notes.txt", folder / "copy.txt")  # the original stays
    (folder / "other.txt").unlink()
    (folder / "teapots.txt").write_text("A different text on kettles and steam, nothing like before.\n")

    report = run_ingest(settings, folder)

    assert (report.added, report.renamed, report.unchanged) == (2, 0, 2)
    keys = set(_documents(settings))
    assert {"notes/copy.txt", "notes/zebracorn-field-notes.txt", "notes/teapots.txt"} <= keys
    assert "notes/other.txt" in keys  # not pruned, not taken: its file is gone but nothing resembles it
    _assert_consistent(settings)


def test_two_new_names_for_one_gone_file_take_it_once(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings, folder = _settings(tmp_path, fake_openai), _folder(tmp_path)
    run_ingest(settings, folder)
    (folder / "zebracorn-field-notes.txt").rename(folder / "a.txt")
    shutil.copy(folder / "a.txt", folder / "b.txt")

    report = run_ingest(settings, folder, prune=True)

    assert (report.added, report.renamed, report.removed) == (1, 1, 0)
    assert {"notes/a.txt", "notes/b.txt"} <= set(_documents(settings))
    _assert_consistent(settings)
