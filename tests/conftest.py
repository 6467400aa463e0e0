from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aws import LocalAws, local_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """A fresh in-process AWS with the system's table, bucket and queues. (It asks for
    monkeypatch first so that a test's own setenv is undone before this restores.)"""
    with local_aws() as resources:
        yield resources
