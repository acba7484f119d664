"""The steps of a distributed job without a broker (what each Celery message runs), on the real database:
one planner at a time, a lost plan resent, and a job whose batches all ended but which never finished."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from searchsvc.config import Settings
from searchsvc.jobs import repository as jobs
from searchsvc.jobs.distributed import finish_job, plan_job, run_batch, stalled_batches
from searchsvc.providers import EmbedderRegistry
from searchsvc.store import Store
from tests.conftest import MODEL, remote_settings
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.celery

STALE = 0.3


def _setup(tmp_path: Path, fake: FakeOpenAI) -> tuple[Store, EmbedderRegistry, str, Settings]:
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(6):
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\nItem {n} is about topic{n}.\n")
    settings = remote_settings(tmp_path, fake, embedding_model=MODEL, job_batch_documents=2,
                               job_stale_seconds=STALE)  # fmt: skip
    store = Store(settings, create=True)
    with store.session() as session:
        job_id = jobs.create(session, "c", {"path": str(folder)}, {"prune": False}).id
    return store, EmbedderRegistry(settings), job_id, settings


def test_a_job_is_planned_once_and_a_lost_plan_is_released_and_planned_again(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    store, embedders, job_id, settings = _setup(tmp_path, fake_openai)
    try:
        with store.session() as session:
            assert jobs.claim_plan(session, job_id, "worker-a")  # a planner that then dies
        assert plan_job(store, embedders, settings, job_id, "worker-b") == []  # a duplicate message: taken
        with store.session() as session:
            assert jobs.silent_queued(session, STALE) == []  # the planner's heartbeat is fresh
        time.sleep(STALE * 2)
        with store.session() as session:
            assert jobs.silent_queued(session, STALE) == [job_id]  # released, to be resent once
            assert jobs.silent_queued(session, STALE) == []  # not twice in one period
        assert plan_job(store, embedders, settings, job_id, "worker-b") == [0, 1, 2]
        assert plan_job(store, embedders, settings, job_id, "worker-c") == []  # planned already: no resend
    finally:
        embedders.close()
        store.close()


def test_a_job_whose_last_worker_died_before_finishing_it_is_finished_by_the_watchdog(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    store, embedders, job_id, settings = _setup(tmp_path, fake_openai)
    try:
        numbers = plan_job(store, embedders, settings, job_id, "worker-a")
        last = [run_batch(store, embedders, settings, job_id, number, "worker-a") for number in numbers]
        assert last[-1] is True  # ... and here its worker died, before finish_job
        time.sleep(STALE * 2)
        assert stalled_batches(store, settings) == [(job_id, 0)]  # one message is enough to finish it
        assert run_batch(store, embedders, settings, job_id, 0, "worker-b") is True  # found done: nothing to do
        finish_job(store, embedders, settings, job_id, "worker-b")
        with store.session() as session:
            job = jobs.get(session, job_id)
            assert job.status == "succeeded" and job.counts["added"] == 6, job.counts
        assert store.summaries("c")[0].documents == 6
    finally:
        embedders.close()
        store.close()
