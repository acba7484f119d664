"""docs/openai_sdk_example.py, the SDK script of the README, run as a user would against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env, make_settings
from tests.servers import serving

pytestmark = pytest.mark.openai_compat
ROOT = Path(__file__).resolve().parent.parent


def test_the_sdk_example_runs_against_sample_data(tmp_path: Path) -> None:
    with serving(cli_env(make_settings(tmp_path))) as url:
        command = [sys.executable, "docs/openai_sdk_example.py", "--base-url", url, "--data", "sample_data/markdown"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].endswith("batch completed, 10 of 10 files in"), lines[0]
    assert "redis only: ['redis']" in lines and "retagged: ['README.md']" in lines
    assert any(line.startswith("models: ['rag:vs_") for line in lines)
    assert "streamed the same answer: True" in lines and "embedding: 384 dimensions" in done.stdout
    assert any("pyenv" in line for line in lines[1:4]), lines[1:4]
    assert re.fullmatch(r"after delete, file-\w+ found: False", lines[-2]) and lines[-1] == "store deleted: True"
