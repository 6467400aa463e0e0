"""Count AWS requests per operation, and the bytes S3 GetObjects return, through
botocore's own event hooks (presigning sends nothing, so it is not counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agentfiles.data import clients


@dataclass
class ObjectRead:
    """One S3 GetObject: the key, the range asked for, and the bytes it returned."""

    key: str
    range: str | None
    bytes: int = 0


class CallLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.reads: list[ObjectRead] = []
        self._asked: ObjectRead | None = None

    def __call__(self, model: object, params: dict, **kwargs: object) -> None:
        service = model.service_model.service_name  # type: ignore[attr-defined]
        self.calls.append((service, model.name, dict(params)))  # type: ignore[attr-defined]
        if service == "s3" and model.name == "GetObject" and self._asked is not None:  # type: ignore[attr-defined]
            self.reads.append(self._asked)
            self._asked = None

    def read_asked(self, params: dict, **kwargs: object) -> None:
        # Parameters are built for a presigned URL too, which sends nothing: the read is
        # counted when its request is sent (`before-call`).
        self._asked = ObjectRead(params["Key"], params.get("Range"))

    def read_done(self, parsed: dict, **kwargs: object) -> None:
        if self.reads:
            self.reads[-1].bytes = int(parsed.get("ContentLength", 0))

    @property
    def bytes_read(self) -> int:
        """Bytes the GetObjects inside the block returned, in all."""
        return sum(read.bytes for read in self.reads)

    def read_keys(self) -> list[str]:
        return [read.key for read in self.reads]

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
    targets[1].meta.events.register("before-parameter-build.s3.GetObject", log.read_asked)
    targets[1].meta.events.register("after-call.s3.GetObject", log.read_done)
    try:
        yield log
    finally:
        for client in targets:
            client.meta.events.unregister("before-call.*.*", log)
        targets[1].meta.events.unregister("before-parameter-build.s3.GetObject", log.read_asked)
        targets[1].meta.events.unregister("after-call.s3.GetObject", log.read_done)
