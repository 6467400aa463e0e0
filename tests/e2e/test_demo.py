"""`agentfiles demo --start` runs its whole tour and every step checks out."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_the_demo_runs_to_the_end():
    result = subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", "demo", "--start"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[7/7]" in result.stdout and "demo complete" in result.stdout
    assert "the unreferenced image is gone" in result.stdout
