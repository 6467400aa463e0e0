"""`agentfiles serve --data DIR`: the local stack's data kept between runs.

moto keeps everything in memory. With a data directory, the stack writes what it holds
there when it stops (Ctrl-C or SIGTERM) and reads it back when it starts, before it
takes a request:

- `table.jsonl`: every item of the table, one per line, as DynamoDB JSON (binary
  values as base64 under `"B64"`);
- `objects.jsonl` and `objects/`: every object of the bucket, its content type, user
  metadata and tags (the `checked` tag), and its bytes in a file of its own;
- `queues.jsonl`: the bodies waiting in every queue and dead-letter queue, sent again
  on start (a record a function held at the stop comes back through the sweep, as a
  lost job does on AWS).

Restored objects do not notify the uploads queue: their files were checked when they
were uploaded. A snapshot is written next to the old one and swapped in whole, so a
crash while writing leaves the previous one; a stack that never finished starting
writes nothing. What happened after the last clean stop (a `kill -9`) is not kept.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import ClientError

from agentfiles_local.provision import REGION, Resources

log = logging.getLogger(__name__)

TABLE_FILE = "table.jsonl"
OBJECTS_FILE = "objects.jsonl"
OBJECTS_DIR = "objects"
QUEUES_FILE = "queues.jsonl"
# Long enough that a body read once is not read again while the queue is emptied.
_HIDE_SECONDS = 600


class UnreadableSnapshot(Exception):
    """The data directory holds something this version cannot put back."""


@dataclass(frozen=True)
class Counts:
    items: int = 0
    objects: int = 0
    messages: int = 0

    def __str__(self) -> str:
        def counted(n: int, what: str) -> str:
            return f"{n} {what}" + ("" if n == 1 else "s")

        return ", ".join(
            (
                counted(self.items, "item"),
                counted(self.objects, "object"),
                counted(self.messages, "queued message"),
            )
        )


def _encode(value: Any) -> Any:
    """DynamoDB JSON with bytes as base64 (`{"B": b"..."}` → `{"B64": "..."}`)."""
    if isinstance(value, bytes | bytearray):
        return {"B64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: _encode(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_encode(inner) for inner in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"B64"}:
            return base64.b64decode(value["B64"])
        return {key: _decode(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_decode(inner) for inner in value]
    return value


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


class Snapshot:
    """The stack's resources on moto at `endpoint`, saved to and loaded from `directory`."""

    def __init__(self, directory: Path, resources: Resources, endpoint: str) -> None:
        self.directory = directory
        self.resources = resources
        self._endpoint = endpoint

    @cached_property
    def _session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION)

    @cached_property
    def dynamodb(self) -> Any:
        return self._session.client("dynamodb", endpoint_url=self._endpoint)

    @cached_property
    def s3(self) -> Any:
        return self._session.client("s3", endpoint_url=self._endpoint)

    @cached_property
    def sqs(self) -> Any:
        return self._session.client("sqs", endpoint_url=self._endpoint)

    def _queues(self) -> dict[str, str]:
        """Every queue by a stable name: `generations`, `dlq:generations`, ..."""
        return {
            **self.resources.queue_urls,
            **{f"dlq:{name}": url for name, url in self.resources.dlq_urls.items()},
        }

    # ---- save

    def save(self) -> Counts:
        """Write everything to a fresh directory beside the old one, then swap it in."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.directory.with_name(self.directory.name + ".saving")
        shutil.rmtree(fresh, ignore_errors=True)
        (fresh / OBJECTS_DIR).mkdir(parents=True)
        counts = Counts(
            items=self._save_table(fresh / TABLE_FILE),
            objects=self._save_objects(fresh),
            messages=self._save_queues(fresh / QUEUES_FILE),
        )
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        fresh.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)
        return counts

    def _save_table(self, path: Path) -> int:
        count = 0
        with path.open("w", encoding="utf-8") as out:
            pages = self.dynamodb.get_paginator("scan").paginate(
                TableName=self.resources.table_name, ConsistentRead=True
            )
            for page in pages:
                for item in page["Items"]:
                    out.write(json.dumps(_encode(item)) + "\n")
                    count += 1
        return count

    def _save_objects(self, directory: Path) -> int:
        bucket, count = self.resources.bucket_name, 0
        with (directory / OBJECTS_FILE).open("w", encoding="utf-8") as out:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for summary in page.get("Contents", []):
                    got = self.s3.get_object(Bucket=bucket, Key=summary["Key"])
                    name = f"{count:08d}"
                    (directory / OBJECTS_DIR / name).write_bytes(got["Body"].read())
                    tags = self.s3.get_object_tagging(Bucket=bucket, Key=summary["Key"])["TagSet"]
                    entry = {
                        "key": summary["Key"],
                        "file": name,
                        "contentType": got.get("ContentType"),
                        "metadata": got.get("Metadata", {}),
                        "tags": {tag["Key"]: tag["Value"] for tag in tags},
                    }
                    out.write(json.dumps(entry) + "\n")
                    count += 1
        return count

    def _save_queues(self, path: Path) -> int:
        """The bodies waiting in each queue (read, not deleted: moto goes down next)."""
        count = 0
        with path.open("w", encoding="utf-8") as out:
            for name, url in self._queues().items():
                while True:
                    batch = self.sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=0,
                        VisibilityTimeout=_HIDE_SECONDS,
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    if not batch:
                        break
                    for message in batch:
                        entry = {
                            "queue": name,
                            "body": message["Body"],
                            "attributes": message.get("MessageAttributes", {}),
                        }
                        out.write(json.dumps(_encode(entry)) + "\n")
                        count += 1
        return count

    # ---- load

    @property
    def saved(self) -> bool:
        """Whether the directory holds a snapshot."""
        return (self.directory / TABLE_FILE).exists()

    def load(self) -> Counts:
        """Put back what the directory holds (nothing when it has no snapshot)."""
        if not self.saved:
            return Counts()
        try:
            return Counts(
                items=self._load_table(self.directory / TABLE_FILE),
                objects=self._load_objects(self.directory),
                messages=self._load_queues(self.directory / QUEUES_FILE),
            )
        except (ValueError, KeyError, TypeError, ClientError) as problem:
            raise UnreadableSnapshot(f"--data {self.directory}: cannot restore it: {problem!r}") from problem

    def _load_table(self, path: Path) -> int:
        count, batch = 0, []
        for item in _lines(path):
            batch.append({"PutRequest": {"Item": _decode(item)}})
            if len(batch) == 25:
                count += self._write(batch)
                batch = []
        return count + (self._write(batch) if batch else 0)

    def _write(self, batch: list[dict[str, Any]]) -> int:
        requests = {self.resources.table_name: batch}
        while requests:
            requests = self.dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        return len(batch)

    def _load_objects(self, directory: Path) -> int:
        """The bucket's objects, with its upload notification off meanwhile."""
        bucket, count = self.resources.bucket_name, 0
        notification = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        notification.pop("ResponseMetadata", None)
        self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            for entry in _lines(directory / OBJECTS_FILE):
                extra: dict[str, Any] = {}
                if entry.get("contentType"):
                    extra["ContentType"] = entry["contentType"]
                if entry.get("tags"):
                    extra["Tagging"] = urlencode(entry["tags"])
                self.s3.put_object(
                    Bucket=bucket,
                    Key=entry["key"],
                    Body=(directory / OBJECTS_DIR / entry["file"]).read_bytes(),
                    Metadata=entry.get("metadata") or {},
                    **extra,
                )
                count += 1
        finally:
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=notification
            )
        return count

    def _load_queues(self, path: Path) -> int:
        queues, count = self._queues(), 0
        for entry in _lines(path):
            url = queues.get(entry["queue"])
            if url is None:
                log.warning("snapshot: no queue %s any more; a body for it is dropped", entry["queue"])
                continue
            attributes = _decode(entry.get("attributes") or {})
            self.sqs.send_message(QueueUrl=url, MessageBody=entry["body"], MessageAttributes=attributes)
            count += 1
        return count
