from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentfiles import model_client
from agentfiles_local.fake_model import FakeModel
from harness.aws import LocalAws, local_aws


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    """The built-in OpenAI-compatible model, on a loopback port, for the whole session."""
    with FakeModel() as fake:
        yield fake


@pytest.fixture
def model(fake_model: FakeModel) -> Iterator[FakeModel]:
    fake_model.reset()
    yield fake_model
    fake_model.reset()


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, model: FakeModel) -> Iterator[LocalAws]:
    """moto wired for generation: the fake model, inline images, no backoff waits, and
    queues whose failed records come straight back."""
    with local_aws(
        visibility_timeout_seconds=0,
        OPENAI_BASE_URL=model.url,
        OPENAI_API_KEY="test",
        URL_MODE="inline",
        RETRY_BASE_SECONDS="0",
        STREAM_FLUSH_MS="0",
    ) as aws:
        model_client.reset()
        yield aws
    model_client.reset()
