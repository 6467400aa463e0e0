"""`agentfiles demo --start` runs its whole tour and every step checks out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_the_demo_runs_to_the_end_says_what_the_vacuum_did_and_leaves_no_log_behind(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", "demo", "--start"],
        capture_output=True,
        text=True,
        timeout=180,
        # Its own temporary directory, so that what the demo leaves there is seen.
        env={**os.environ, "TMPDIR": str(tmp_path), "FAKE_MODEL_WORD_DELAY_MS": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[7/7]" in result.stdout and "demo complete" in result.stdout
    assert "the unreferenced image is gone" in result.stdout
    # The vacuum's result is a sentence, not a dict
    (vacuum,) = [line for line in result.stdout.splitlines() if "vacuum:" in line]
    assert "1 file(s) deleted" in vacuum
    assert "{" not in vacuum
    # And the stack it started left no log file behind
    assert list(tmp_path.glob("agentfiles-local-*.log")) == []
