"""GuardDuty Malware Protection for S3, as far as this system can see it: the emulated
scanner of the local stack (on unless `MALWARE_SCAN=false`).

It hears of every new original as GuardDuty does (an ObjectCreated notification of the
bucket's `files/` prefix, to a queue of its own), waits a moment (`MALWARE_SCAN_DELAY_MS`,
so that it races the upload check as the real scanner does), reads the object, finds the
EICAR test file (and any object whose SHA-256 is in `LOCAL_MALWARE_SHA256S`), tags the
object `GuardDutyMalwareScanStatus` (keeping its other tags), and publishes the same
`GuardDuty Malware Protection Object Scan Result` event onto the local bus, whose rule
(the stack's, in `infra/malware.py`) delivers this bucket's results to the `scans` queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

from agentfiles import topology
from agentfiles_local.events import scan_result_event

log = logging.getLogger(__name__)

QUEUE_NAME = "local-malware-scanner"
DEFAULT_DELAY_MS = 300
# The EICAR anti-virus test file: a file that begins with these 68 bytes (and holds at
# most whitespace after them, 128 bytes in all) is reported by every scanner, GuardDuty's
# included, and harms nothing.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_THREAT = "EICAR-Test-File (not a virus)"
CONFIGURED_THREAT = "Local-Test-Threat (a configured SHA-256)"


def is_eicar(data: bytes) -> bool:
    return data.startswith(EICAR) and len(data) <= 128 and not data[len(EICAR) :].strip()


def verdict(data: bytes, threat_hashes: frozenset[str]) -> tuple[str, list[str]]:
    """The scan result and the threats found, as GuardDuty reports them."""
    if is_eicar(data):
        return "THREATS_FOUND", [EICAR_THREAT]
    if hashlib.sha256(data).hexdigest() in threat_hashes:
        return "THREATS_FOUND", [CONFIGURED_THREAT]
    return topology.CLEAN, []


def threat_hashes_of(text: str) -> frozenset[str]:
    """`LOCAL_MALWARE_SHA256S`: comma-separated lower-case hex SHA-256s."""
    hashes = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    bad = [h for h in hashes if len(h) != 64 or any(c not in "0123456789abcdef" for c in h)]
    if bad:
        raise ValueError(f"LOCAL_MALWARE_SHA256S: not a SHA-256: {', '.join(sorted(bad))}")
    return hashes


def matches_rule(event: dict[str, Any], bucket: str) -> bool:
    """The stack's rule: this bucket's scan results (`infra/malware.py`)."""
    return (
        event.get("source") == topology.SCAN_EVENT_SOURCE
        and event.get("detail-type") == topology.SCAN_RESULT_DETAIL_TYPE
        and event.get("detail", {}).get("s3ObjectDetails", {}).get("bucketName") == bucket
    )


def subscribe(s3: Any, sqs: Any, bucket: str) -> str:
    """The scanner's queue, and the bucket's ObjectCreated notification of originals to it
    (beside the upload check's): its URL."""
    url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
    configuration.pop("ResponseMetadata", None)
    queues = [q for q in configuration.get("QueueConfigurations", []) if q["QueueArn"] != arn]
    queues.append(
        {
            "QueueArn": arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": topology.ORIGINALS_PREFIX}]}},
        }
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={**configuration, "QueueConfigurations": queues}
    )
    return url


class EmulatedScanner:
    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        bucket: str,
        queue_url: str,
        scans_queue_url: str,
        delay_s: float = DEFAULT_DELAY_MS / 1000,
        threat_hashes: Iterable[str] = (),
    ) -> None:
        self._s3, self._sqs = s3, sqs
        self.bucket = bucket
        self._queue_url = queue_url
        self._scans_queue_url = scans_queue_url
        self.delay_s = delay_s
        self.threat_hashes = frozenset(threat_hashes)
        self.scanned = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmulatedScanner:
        self._thread = threading.Thread(target=self._run, name="malware-scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:  # the scanner must outlive a bad message or a moto hiccup
                log.exception("the emulated malware scanner failed a poll")
                self._stopping.wait(1.0)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive what is waiting, scan each new original after the delay; how many."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if messages:
            self._stopping.wait(self.delay_s)
        count = 0
        for message in messages:
            for key in _created_keys(message["Body"]):
                self.scan(key)
                count += 1
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return count

    def scan(self, key: str) -> dict[str, Any] | None:
        """Scan one object, tag it and publish its result; None when it is gone already
        (deleted before its scan: GuardDuty has nothing to tag either)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        data = response["Body"].read()
        etag = response.get("ETag", "").strip('"') or None
        result, threats = verdict(data, self.threat_hashes)
        self._tag(key, result)
        event = scan_result_event(self.bucket, key, result, etag=etag, threats=threats)
        self.publish(event)
        self.scanned += 1
        log.info("scanned %s: %s%s", key, result, f" ({', '.join(threats)})" if threats else "")
        return event

    def _tag(self, key: str, result: str) -> None:
        tags = self._s3.get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
        kept = [tag for tag in tags if tag["Key"] != topology.SCAN_TAG_KEY]
        self._s3.put_object_tagging(
            Bucket=self.bucket,
            Key=key,
            Tagging={"TagSet": [*kept, {"Key": topology.SCAN_TAG_KEY, "Value": result}]},
        )

    def publish(self, event: dict[str, Any]) -> None:
        """The local bus: the stack's one rule on scan results, to the scans queue."""
        if matches_rule(event, self.bucket):
            self._sqs.send_message(QueueUrl=self._scans_queue_url, MessageBody=json.dumps(event))


def _created_keys(body: str) -> list[str]:
    notification = json.loads(body)
    # S3 URL-encodes keys in notifications.
    keys = [
        unquote_plus(record["s3"]["object"]["key"])
        for record in notification.get("Records", [])
        if record.get("eventName", "").startswith("ObjectCreated")
    ]
    return [key for key in keys if key.startswith(topology.ORIGINALS_PREFIX)]
