from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agentfiles.settings import DEPLOYMENT_VARIABLES
from harness.aws import LocalAws, local_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """A fresh in-process AWS with the system's table, bucket and queues. (It asks for
    monkeypatch first so that a test's own setenv is undone before this restores.)"""
    with local_aws() as resources:
        yield resources


def pytest_configure(config: pytest.Config) -> None:
    """Handlers check their settings when they are imported, as at Lambda's init; some
    test modules import a handler when collected. These placeholders let that import
    pass; every fixture that runs a handler sets the real resources first."""
    for name in DEPLOYMENT_VARIABLES:
        os.environ.setdefault(name, f"unset-{name.lower()}")
