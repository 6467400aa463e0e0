"""`make run` on a fresh machine: it says what it does, and installs only what runs the stack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_given_no_virtual_environment_when_make_run_starts_then_it_says_so_and_installs_the_local_extra_only(
    tmp_path,
):
    # When: what `make run` would do with no virtual environment yet (a dry run)
    planned = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    # (make called from make, as in CI, names the directories it enters and leaves)
    planned = [line for line in planned if not line.startswith("make[")]
    installs = [line for line in planned if "pip install" in line and " -e " in line]
    # Then: one install, of the `local` extra (not the 1 GB `dev` set of CDK, browsers and fuzzers)
    assert len(installs) == 1
    assert "'.[local]'" in installs[0]
    assert "[dev]" not in "\n".join(planned)
    # And a line tells the person at the terminal what is happening, before the install
    first_echo = next(i for i, line in enumerate(planned) if line.startswith("echo ") and "install" in line)
    assert first_echo < planned.index(installs[0])
    # And then it serves
    assert planned[-1].strip().endswith("agentfiles serve")
