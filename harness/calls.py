"""Count AWS requests per operation, through botocore's own event hooks (presigning
sends nothing, so it is not counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from agentfiles.data import clients


class CallLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, model: object, params: dict, **kwargs: object) -> None:
        service = model.service_model.service_name  # type: ignore[attr-defined]
        self.calls.append((service, model.name, dict(params)))  # type: ignore[attr-defined]

    def counts(self) -> Counter[str]:
        return Counter(name for _, name, _ in self.calls)

    def names(self) -> list[str]:
        return [name for _, name, _ in self.calls]


@contextmanager
def count_calls() -> Iterator[CallLog]:
    """Every call the data layer's clients make inside the block."""
    log = CallLog()
    targets = [clients.dynamodb(), clients.s3(), clients.sqs(), clients.secrets()]
    for client in targets:
        client.meta.events.register("before-call.*.*", log)
    try:
        yield log
    finally:
        for client in targets:
            client.meta.events.unregister("before-call.*.*", log)
