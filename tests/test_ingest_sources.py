"""Folders of one name stay apart; files without text are reported once and never stored empty."""

from __future__ import annotations

import shutil
from pathlib import Path

from pypdf import PdfWriter
from sqlalchemy import select

from searchsvc.providers import make_embedding_provider
from searchsvc.search import search
from searchsvc.storage.schema import Document
from searchsvc.store import Store
from tests.conftest import MODEL, SAMPLE_DATA, remote_settings, run_ingest, table_counts
from tests.fake_openai import FakeOpenAI


def _docs(tmp_path: Path, where: str, text: str) -> Path:
    folder = tmp_path / where / "docs"
    folder.mkdir(parents=True)
    (folder / "guide.md").write_text(f"# Guide\n\n{text}\n")
    (folder / f"{where}-only.md").write_text(f"# Only in {where}\n\n{text} Extra.\n")
    return folder


def test_two_folders_of_one_name_keep_their_own_documents_and_prune_apart(tmp_path, fake_openai) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    first = _docs(tmp_path, "a", "Quokkas live on Rottnest Island.")
    second = _docs(tmp_path, "b", "Volcanoes erupt molten magma.")
    assert run_ingest(settings, first, prune=True).added == 2
    assert run_ingest(settings, second, prune=True).added == 2  # not "changed": nothing of a/docs is touched
    (second / "b-only.md").unlink()
    report = run_ingest(settings, second, prune=True)
    assert (report.unchanged, report.removed) == (1, 1)
    assert run_ingest(settings, first, prune=True).unchanged == 2
    store = Store(settings)
    try:
        with store.session() as session:
            keys = dict(session.execute(select(Document.key, Document.path)).all())
        provider = make_embedding_provider(settings)
        hit = search(store, provider, "docs", "volcanoes erupt magma", k=1, mode="vector").hits[0]
        provider.close()
    finally:
        store.close()
    assert set(keys) == {"docs/guide.md", "docs/a-only.md", "b/docs/guide.md"}
    assert keys["b/docs/guide.md"] == str((second / "guide.md").resolve())  # the path users know
    assert (hit.document_key, hit.path) == ("b/docs/guide.md", str((second / "guide.md").resolve()))


def _blank_pdf(path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)  # a page with no text layer, like a scan
    with open(path, "wb") as handle:
        writer.write(handle)


def test_a_pdf_without_text_is_skipped_once_with_its_reason_and_not_parsed_again(tmp_path, fake_openai) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = tmp_path / "papers"
    folder.mkdir()
    _blank_pdf(folder / "scan.pdf")
    shutil.copy(SAMPLE_DATA / "markdown/redis/README.md", folder / "redis.md")
    first = run_ingest(settings, folder)
    assert (first.added, len(first.skipped)) == (1, 1)
    assert first.skipped[0]["path"].endswith("scan.pdf") and "no text to index" in first.skipped[0]["reason"]
    assert table_counts(settings)["documents"] == 1  # not stored as an empty document
    again = run_ingest(settings, folder)
    assert (again.added, again.unchanged, again.skipped_before, again.skipped) == (0, 2, 1, [])
    (folder / "scan.pdf").write_bytes((folder / "scan.pdf").read_bytes() + b"\n%edited\n")
    changed = run_ingest(settings, folder)
    assert len(changed.skipped) == 1 and changed.unchanged == 1  # a new version is looked at again
    (folder / "scan.pdf").unlink()
    pruned = run_ingest(settings, folder, prune=True)
    assert (pruned.removed, pruned.unchanged) == (0, 1)


def test_a_document_that_loses_its_text_leaves_no_stale_chunks(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "note.md").write_text("# Note\n\nWombats leave cube shaped droppings.\n")
    run_ingest(settings, folder)
    (folder / "note.md").write_text("   \n\n")
    report = run_ingest(settings, folder)
    assert report.removed == 1 and "no text" in report.skipped[0]["reason"]
    assert table_counts(settings)["chunks"] == 0


def test_labels_never_nest_so_keys_never_collide(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    roots = [tmp_path / "p" / "a", tmp_path / "q" / "b", tmp_path / "r" / "a" / "b"]
    (roots[0] / "b").mkdir(parents=True)
    (roots[0] / "b" / "f.md").write_text("# F\n\nThe first folder's file about quokkas.\n")
    roots[1].mkdir(parents=True)
    (roots[1] / "g.md").write_text("# G\n\nThe second folder's file about wombats.\n")
    (roots[2]).mkdir(parents=True, exist_ok=True)
    (roots[2] / "f.md").write_text("# F\n\nThe third folder's file about numbats.\n")
    assert [run_ingest(settings, root).added for root in roots] == [1, 1, 1]  # none replaced another's
    store = Store(settings)
    try:
        with store.session() as session:
            keys = sorted(session.scalars(select(Document.key)))
    finally:
        store.close()
    assert keys == ["a/b/f.md", "b/g.md", "r/a/b/f.md"]


def test_a_file_inside_an_ingested_folder_keeps_the_folders_key(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.md").write_text("# A\n\nA note about quokkas.\n")
    run_ingest(settings, folder)
    (folder / "sub" / "a.md").write_text("# A\n\nAn edited note about quokkas and wombats.\n")
    report = run_ingest(settings, folder / "sub" / "a.md")
    assert (report.added, report.changed) == (0, 1) and list(report.status) == ["docs/sub/a.md"]
    assert table_counts(settings)["documents"] == 1


def test_a_file_that_cannot_be_read_this_time_keeps_what_is_indexed(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    from ingest.document import SourceDocument, SourceUnavailable
    from ingest.pipeline import IngestPipeline
    from ingest.sources import record_document

    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    store, provider = Store(settings), make_embedding_provider(settings)

    def unreadable() -> None:
        raise SourceUnavailable("unreadable: Input/output error")

    try:
        pipeline = IngestPipeline(store, provider, "docs", chunk_tokens=256, chunk_overlap=0)
        pipeline.run([record_document("note", "Quokkas live on Rottnest Island.", None, {}, "src", None)])
        failing = SourceDocument(key="note", source="src", path="/x/note.md", content_hash="new", load=unreadable)
        report = pipeline.run([failing])
        assert report.skipped[0]["reason"] == "unreadable: Input/output error" and report.removed == 0
        assert table_counts(settings)["chunks"] == 1  # the indexed version stays
        again = pipeline.run([record_document("note", "Quokkas and wombats.", None, {}, "src", None)])
        assert again.changed == 1  # and the next readable version is taken, not remembered as skipped
    finally:
        store.close()
        provider.close()
