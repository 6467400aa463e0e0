from __future__ import annotations

import pytest

from tests.support.aws import LocalAws, start_local_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """A fresh in-process AWS with the system's table, bucket and queues."""
    yield from start_local_aws(monkeypatch)
