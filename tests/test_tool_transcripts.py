"""docs/tool_transcripts.py, the transcripts of the README and the closing note, replayed and checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools
ROOT = Path(__file__).resolve().parent.parent


def test_the_tool_transcripts_replay() -> None:
    done = subprocess.run([sys.executable, "docs/tool_transcripts.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    calls = [line for line in lines if line.startswith("event tool_")]
    assert [line.split()[1] for line in calls] == ["tool_call", "tool_result", "tool_call", "tool_result"]
    assert "[4] sample_data/markdown/pyenv/README.md" in done.stdout and "'stopped_by': 'answer'" in done.stdout
    call = re.compile(r'output: function_call get_weather\(\{"city": "Lisbon"\}\) call_id=call_\d+_0$')
    assert any(call.search(line) for line in lines)  # the id numbers the fake's requests, embeddings included
    assert "output_text: It is sunny; pyenv installs with Homebrew either way [1]." in done.stdout
    assert "annotations: [('file_citation', 'README.md')]" in done.stdout
