"""The command line: usage errors in one line, Ctrl-C keeps what was committed, help when called bare."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MODEL, SAMPLE_DATA, cli_env, make_settings, remote_settings
from tests.fake_openai import FakeOpenAI


@pytest.mark.parametrize(
    "args,message",
    [
        (["search"], "Missing argument 'query'. (see `searchsvc search --help`)"),
        (["frobnicate"], "No such command 'frobnicate'."),
        (["search", "x", "-k", "0"], "Invalid value for '-k'"),
        (["search", "x", "--mode", "fuzzy"], "Invalid value for '--mode'"),
        (["ingest"], "Missing argument 'path'."),
        (["db", "downgrade"], "No such command 'downgrade'."),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", *args],
        env=cli_env(make_settings(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr


def test_called_bare_it_prints_its_help(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "searchsvc"], capture_output=True, text=True)
    assert result.returncode == 0 and "ingest" in result.stdout and "search" in result.stdout


def test_ctrl_c_during_ingest_keeps_what_was_committed(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 0.3
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL)
    env = cli_env(settings, fake_openai, SEARCHSVC_BATCH_MAX_INPUTS="8", SEARCHSVC_MAX_IN_FLIGHT="1")
    command = [sys.executable, "-m", "searchsvc", "ingest", str(SAMPLE_DATA / "markdown"), "--json"]
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(fake_openai.embedding_requests()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=30)
    assert running.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "error: interrupted; what was committed is kept, run the command again to finish"
    )
    assert '"code": "interrupted"' in out and "Traceback" not in err
    paid = set(fake_openai.embedded_inputs)
    fake_openai.latency = 0.0
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert max(fake_openai.embedded_inputs.values()) == 1 and paid  # nothing committed was paid for again


READ_ONLY = [["search", "quokkas"], ["collections"], ["doctor"], ["reindex"], ["ask", "What is Redis?"], ["models"]]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_read_only_commands_in_an_empty_folder_create_nothing(tmp_path: Path, args: list[str]) -> None:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = cli_env(make_settings(tmp_path))
    del env["SEARCHSVC_DATA_DIR"]  # the default, ./.searchsvc, in the folder the command runs in
    result = subprocess.run(
        [sys.executable, "-m", "searchsvc", *args], env=env, cwd=empty, capture_output=True, text=True
    )
    assert list(empty.iterdir()) == [], result.stderr
    if args[0] in ("collections", "models"):
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and "run `searchsvc ingest PATH` to create one" in result.stderr
    if "SEARCHSVC_DATABASE_URL" in env:  # PostgreSQL: the empty database stays empty
        from sqlalchemy import create_engine, inspect

        engine = create_engine(env["SEARCHSVC_DATABASE_URL"])
        assert inspect(engine).get_table_names() == []
        engine.dispose()


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.latency = 8.0  # a slow API: the first Ctrl-C waits for the request it already sent
    settings = remote_settings(tmp_path, fake_openai, embedding_model=MODEL, request_timeout=20.0)
    env = cli_env(settings, fake_openai, SEARCHSVC_MAX_IN_FLIGHT="1")
    command = [sys.executable, "-m", "searchsvc", "ingest", str(SAMPLE_DATA / "markdown" / "redis")]
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not fake_openai.embedding_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=30)
    assert time.monotonic() - started < 4  # not the 7 s left of the request
    assert running.returncode == 130 and "interrupted; what was committed is kept" in err
