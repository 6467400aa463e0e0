"""SQS event source mappings: one thread per queue that receives batches, invokes the
queue's consumer with a real-shaped SQS event and settles the batch the way Lambda
does with `ReportBatchItemFailures`:

- records not listed in `batchItemFailures` are deleted;
- listed ones stay, come back after the visibility timeout with a higher
  `ApproximateReceiveCount`, and after `maxReceiveCount` SQS (moto) moves them to
  the DLQ;
- a handler that raises (or a response naming a record that is not in the batch)
  fails the whole batch: nothing is deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from agentfiles.topology import QueueSpec
from agentfiles_local.events import sqs_event, sqs_record
from agentfiles_local.runtime.host import FunctionHost

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 1
ERROR_PAUSE_SECONDS = 1.0


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS message attributes as Lambda puts them in a record (camelCase, list fields)."""
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        for name, value in attributes.items()
    }


def to_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One received message as a Lambda SQS record: the real id, receipt handle and
    system attributes (so a consumer's `ChangeMessageVisibility` works)."""
    attributes = dict(message.get("Attributes", {}))
    record = sqs_record(
        message["Body"],
        queue_arn,
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        attributes=attributes,
    )
    record["messageAttributes"] = lambda_message_attributes(message.get("MessageAttributes", {}))
    return record


def failed_ids(response: Any, batch_ids: list[str]) -> set[str]:
    """The message ids to leave on the queue, read as Lambda reads a partial batch
    response: no report (or an empty one) means every record succeeded; a report that
    names anything but a message of the batch (empty, null, unknown) fails them all."""
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failures = response["batchItemFailures"]
    named = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    if not named <= set(batch_ids):
        log.warning("batchItemFailures names records not in the batch: the whole batch failed")
        return set(batch_ids)
    return {str(identifier) for identifier in named}


class QueuePoller:
    """The event source mapping of one queue, on its own thread."""

    def __init__(
        self,
        spec: QueueSpec,
        *,
        queue_url: str,
        queue_arn: str,
        sqs: Any,
        host: FunctionHost,
        wait_seconds: int = LONG_POLL_SECONDS,
    ) -> None:
        self.spec = spec
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._sqs = sqs
        self._host = host
        self._wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> QueuePoller:
        self._thread = threading.Thread(target=self._run, name=f"poller-{self.spec.name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the loop to end after the batch in hand (so several pollers wind down together)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end and wait for the batch in hand to be settled."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("poller %s: receive or settle failed", self.spec.name)
                self._stop.wait(ERROR_PAUSE_SECONDS)

    def receive(self) -> list[dict[str, Any]]:
        """One batch: a long poll, then, like Lambda's batching window, one more wait
        for records to fill the batch."""
        batch = self._receive(self.spec.batch_size, self._wait_seconds)
        window = self.spec.batching_window_seconds
        if batch and window and len(batch) < self.spec.batch_size and not self._stop.is_set():
            batch += self._receive(self.spec.batch_size - len(batch), window)
        return batch

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        return self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, 10),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self) -> int | None:
        """Receive one batch, invoke the consumer and settle it; returns how many records
        were deleted (None when the queue had nothing)."""
        batch = self.receive()
        if not batch:
            return None
        self.batches += 1
        event = sqs_event([to_record(message, self.queue_arn) for message in batch])
        ids = [message["MessageId"] for message in batch]
        started = time.perf_counter()
        try:
            response = self._host.invoke(self.spec.consumer, event)
        except Exception:
            log.exception("%s failed on a batch of %d: it will be retried", self.spec.consumer, len(batch))
            return 0
        log.info(
            "%s → %s: %d record(s) in %.0f ms",
            self.spec.name,
            self.spec.consumer,
            len(batch),
            (time.perf_counter() - started) * 1000,
        )
        failed = failed_ids(response, ids)
        done = [message for message in batch if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )
        if failed:
            log.info(
                "%s: %d of %d record(s) failed and will come back", self.spec.name, len(failed), len(ids)
            )
        return len(done)
