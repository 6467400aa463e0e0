"""Limits as a user and an operator meet them on a local stack: `agentfiles usage`,
`agentfiles models`, and `agentfiles admin quota | usage` (straight against the
stack's table, through its moto)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.local_stack import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def run(stack: LocalStackProcess, *args: str, sub: str | None = None) -> subprocess.CompletedProcess[str]:
    who = ["--sub", sub] if sub else []
    return subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", *args, "--url", stack.base_url, *who],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def sub() -> str:
    return f"limits-{uuid.uuid4().hex[:8]}"


def test_usage_shows_storage_and_today_and_models_names_the_defaults(local_stack, sub, tmp_path):
    # Given a user who uploaded a 1000-byte file
    notes = tmp_path / "notes.txt"
    notes.write_text("n" * 1000)
    assert run(local_stack, "upload", str(notes), sub=sub).returncode == 0
    # When they ask for their usage and the models
    usage = run(local_stack, "usage", "--json", sub=sub)
    models = run(local_stack, "models", sub=sub)
    # Then the file is counted, and the default models are marked
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["storage"]["bytes"] == 1000
    assert "1000 bytes of 10.0 GiB, 1 of 10000 files" in run(local_stack, "usage", sub=sub).stdout
    assert models.returncode == 0, models.stderr
    assert "(default)" in models.stdout and models.stdout.startswith("chat")


def test_an_operators_quota_is_enforced_by_the_api_and_shown_back(local_stack, sub, tmp_path):
    # Given an operator who gives the user 1 KiB
    quota = run(local_stack, "admin", "quota", sub, "--bytes", "1KiB", "--json")
    assert quota.returncode == 0, quota.stderr
    report = json.loads(quota.stdout)
    assert report["storage"]["quotaBytes"] == 1024 and report["overrides"]["quotaBytes"] == 1024
    # When the user uploads 2000 bytes
    big = tmp_path / "big.txt"
    big.write_text("b" * 2000)
    refused = run(local_stack, "upload", str(big), sub=sub)
    # Then the API refuses it under that quota
    assert refused.returncode == 1
    assert "error: storage_quota_exceeded:" in refused.stderr
    # And the operator sees the user's usage and where the quota comes from
    shown = run(local_stack, "admin", "usage", sub)
    assert shown.returncode == 0, shown.stderr
    assert "0 bytes of 1.0 KiB (set for this owner)" in shown.stdout
    # When the operator clears it / Then the default applies again and the upload passes
    assert run(local_stack, "admin", "quota", sub, "--bytes", "default").returncode == 0
    assert run(local_stack, "upload", str(big), sub=sub).returncode == 0
    assert "(default)" in run(local_stack, "admin", "usage", sub).stdout


def test_admin_refuses_a_quota_that_is_not_a_size(local_stack, sub):
    bad = run(local_stack, "admin", "quota", sub, "--bytes", "lots")
    assert bad.returncode == 2 and "is not a size" in bad.stderr
    nothing = run(local_stack, "admin", "quota", sub)
    assert nothing.returncode == 1 and "give --bytes and/or --files" in nothing.stderr


def test_admin_usage_counts_the_days_replies(local_stack, sub, tmp_path: Path):
    # Given a user who asked one question
    assert run(local_stack, "ask", "hello there", sub=sub).returncode == 0
    # When the operator looks / Then today shows one reply with its tokens
    report = json.loads(run(local_stack, "admin", "usage", sub, "--json").stdout)
    (today,) = report["days"]
    assert today["replies"] == 1 and today["completionTokens"] > 0
