"""The README's curl walk-through works when pasted, as written, against a running stack."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
README = Path(__file__).resolve().parents[2] / "README.md"


def walk_through() -> str:
    section = README.read_text().split("### Try it with curl", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, "the curl walk-through has no bash block"
    return found.group(1)


def test_the_curl_walk_through_pasted_into_bash_uploads_a_picture_and_gets_the_reply_about_it(
    local_stack, tmp_path
):
    # Given: an empty folder (no cat.png in it) and the stack where the README says it runs
    script = walk_through()
    assert "http://127.0.0.1:8000" in script
    # When: the block is pasted into bash, as it is
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail"],
        input=script,
        cwd=tmp_path,
        env={**os.environ, "API": local_stack.base_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then: every step worked: the file was checked, and the reply is about it
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "ready" in lines
    assert lines[-1].startswith("I see 1 attachment(s): image 1: PNG 64x48."), result.stdout
    assert result.stderr == ""
