"""An in-process AWS (moto) with the system's resources, and the functions wired to it."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from moto import mock_aws

from agentfiles.data import clients, keys
from agentfiles.settings import get_settings
from agentfiles_local import moto_patches
from agentfiles_local.events import LambdaContext, http_api_event, sqs_event, sqs_record
from agentfiles_local.provision import Resources, provision

T = TypeVar("T")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalAws:
    """The provisioned resources plus ways to call the functions as AWS would."""

    resources: Resources

    @cached_property
    def s3(self) -> Any:
        return clients.session().client("s3", region_name="us-east-1")

    @cached_property
    def sqs(self) -> Any:
        return clients.session().client("sqs", region_name="us-east-1")

    @cached_property
    def sm(self) -> Any:
        return clients.session().client("secretsmanager", region_name="us-east-1")

    @cached_property
    def dynamodb(self) -> Any:
        return clients.session().client("dynamodb", region_name="us-east-1")

    def call_api(
        self,
        method: str,
        path: str,
        *,
        sub: str | None = "alice",
        json_body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        from functions.api.handler import lambda_handler

        all_headers = {"content-type": "application/json", **(headers or {})}
        body = json.dumps(json_body) if json_body is not None else None
        claims = {"sub": sub} if sub else None
        event = http_api_event(method, path, headers=all_headers, query=query, body=body, claims=claims)
        response = lambda_handler(event, LambdaContext("api", 29))
        raw = response.get("body") or ""
        if response.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        parsed = json.loads(raw) if raw and raw.lstrip().startswith(("{", "[")) else raw
        return Reply(response["statusCode"], parsed, response.get("headers") or {})

    def drain(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        """Receive what is waiting on a queue, as Lambda's poller would (and delete it)."""
        url = self.resources.queue_urls[queue]
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=max_messages, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found.extend(batch)

    def sqs_event_for(self, queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        arn = self.resources.queue_arns[queue]
        return sqs_event(
            [
                sqs_record(
                    m["Body"],
                    arn,
                    message_id=m["MessageId"],
                    receipt_handle=m["ReceiptHandle"],
                    receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                )
                for m in messages
            ]
        )

    def deliver(self, queue: str, max_messages: int = 10) -> dict[str, Any] | None:
        """One poll of `queue` as Lambda's event source mapping does it: receive, invoke
        the consumer, delete what did not fail. None when the queue had nothing."""
        import importlib

        from agentfiles import topology

        spec = topology.QUEUES[queue]
        url = self.resources.queue_urls[queue]
        batch = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(max_messages, spec.batch_size),
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return None
        handler = importlib.import_module(f"functions.{spec.consumer}.handler").lambda_handler
        function = topology.FUNCTIONS[spec.consumer]
        result = handler(
            self.sqs_event_for(queue, batch), LambdaContext(spec.consumer, function.timeout_seconds)
        )
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in batch:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return result

    def run_upload_trigger(self) -> dict[str, Any]:
        from functions.upload_trigger.handler import lambda_handler

        messages = self.drain("uploads")
        return lambda_handler(self.sqs_event_for("uploads", messages), LambdaContext("upload_trigger", 60))

    def run_maintenance(self) -> dict[str, Any]:
        from functions.maintenance.handler import lambda_handler

        messages = self.drain("maintenance")
        return lambda_handler(self.sqs_event_for("maintenance", messages), LambdaContext("maintenance", 120))

    def small_file(
        self, data: bytes, media_type: str, *, sub: str = "alice", filename: str = "f"
    ) -> dict[str, Any]:
        """A ready file through POST /files."""
        body = {"filename": filename, "mediaType": media_type, "data": base64.b64encode(data).decode()}
        reply = self.call_api("POST", "/files", sub=sub, json_body=body)
        assert reply.status in (200, 201), reply.body
        return reply.body["file"]

    def new_thread(self, sub: str = "alice", title: str | None = None) -> str:
        reply = self.call_api("POST", "/threads", sub=sub, json_body={"title": title} if title else {})
        assert reply.status == 201, reply.body
        return reply.body["thread"]["id"]

    def refcount(self, owner: str, file_id: str) -> int | None:
        row = self.file_row(owner, file_id)
        return None if row is None else row["refcount"]

    def file_row(self, owner: str, file_id: str) -> dict[str, Any] | None:
        from agentfiles.data.table import from_item

        item = self.dynamodb.get_item(
            TableName=self.resources.table_name,
            Key={"pk": {"S": f"OWNER#{owner}"}, "sk": {"S": f"FILE#{file_id}"}},
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def object_keys(self) -> set[str]:
        response = self.s3.list_objects_v2(Bucket=self.resources.bucket_name)
        return {o["Key"] for o in response.get("Contents", [])}

    def register(
        self,
        data: bytes,
        media_type: str,
        *,
        sub: str = "alice",
        filename: str = "f",
        declare_sha: bool = True,
    ) -> Reply:
        """`POST /files/uploads` for these bytes, with their sha256 unless told not to."""
        import hashlib

        request: dict[str, Any] = {"filename": filename, "mediaType": media_type, "size": len(data)}
        if declare_sha:
            request["sha256"] = hashlib.sha256(data).hexdigest()
        return self.call_api("POST", "/files/uploads", sub=sub, json_body=request)

    def upload(
        self,
        data: bytes,
        media_type: str,
        *,
        sub: str = "alice",
        filename: str = "f",
        declare_sha: bool = True,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        """Register, PUT (the bytes given, or `body` instead) and run the trigger: a file as a
        client's upload leaves it."""
        reply = self.register(data, media_type, sub=sub, filename=filename, declare_sha=declare_sha)
        assert reply.status in (200, 201), reply.body
        if reply.body["upload"] is None:
            return reply.body["file"]
        key = keys.object_key(sub, reply.body["file"]["id"])
        self.s3.put_object(
            Bucket=self.resources.bucket_name,
            Key=key,
            Body=body if body is not None else data,
            ContentType=media_type,
        )
        self.run_upload_trigger()
        return self.call_api("GET", f"/files/{reply.body['file']['id']}", sub=sub).body["file"]


def while_writing(read: Callable[[], T], attempts: int = 50) -> T:
    """A read made while another thread writes to moto. moto's in-process table is not
    safe for a Query that iterates a partition while a put changes it (DynamoDB is):
    the read is simply made again."""
    for _ in range(attempts - 1):
        try:
            return read()
        except RuntimeError as error:
            if "changed size during iteration" not in str(error):
                raise
    return read()


_BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "agentfiles",
    "POWERTOOLS_SERVICE_NAME": "agentfiles-test",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@contextmanager
def local_aws(visibility_timeout_seconds: int | None = None, **settings: str) -> Iterator[LocalAws]:
    """moto with the system's resources, the functions' environment pointing at them;
    the environment is restored afterwards."""
    moto_patches.apply()
    saved = dict(os.environ)
    os.environ.update(_BASE_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            clients.reset()
            resources = provision(visibility_timeout_seconds=visibility_timeout_seconds)
            os.environ.update({**resources.function_environment(), **settings})
            get_settings.cache_clear()
            yield LocalAws(resources)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clients.reset()
        get_settings.cache_clear()
