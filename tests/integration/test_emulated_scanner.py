"""The local stack's emulated GuardDuty scanner, on moto: it hears of each new original,
finds EICAR and configured SHA-256s, tags the object as GuardDuty does, and publishes the
same event, which the upload trigger settles."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from agentfiles.topology import CHECKED_TAG, SCAN_TAG_KEY
from agentfiles_local.runtime import scanner
from harness.aws import LocalAws, local_aws

EVENTS = Path(__file__).parents[2] / "events"
CONFIGURED = b"bytes an operator listed as a threat\n"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAws, scanner.EmulatedScanner]]:
    with local_aws(MALWARE_SCAN="true") as aws:
        bucket = aws.resources.bucket_name
        emulated = scanner.EmulatedScanner(
            s3=aws.s3,
            sqs=aws.sqs,
            bucket=bucket,
            queue_url=scanner.subscribe(aws.s3, aws.sqs, bucket),
            scans_queue_url=aws.resources.queue_urls["scans"],
            delay_s=0,
            threat_hashes=[hashlib.sha256(CONFIGURED).hexdigest()],
        )
        yield aws, emulated


def _upload(aws: LocalAws, data: bytes) -> str:
    reply = aws.register(data, "text/plain")
    assert reply.status == 201, reply.body
    file_id = reply.body["file"]["id"]
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name, Key=f"files/alice/{file_id}", Body=data, ContentType="text/plain"
    )
    return file_id


def _file(aws: LocalAws, file_id: str) -> dict:
    return aws.call_api("GET", f"/files/{file_id}").body["file"]


def test_the_scanner_and_the_check_race_and_either_order_ends_ready(stack):
    aws, emulated = stack
    # Given two clean uploads: one checked before its scan, one scanned before its check
    first, second = _upload(aws, b"first\n"), _upload(aws, b"second\n")
    uploads = aws.drain("uploads")
    by_key = {
        unquote_plus(json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]): m
        for m in uploads
        if "Records" in json.loads(m["Body"])  # not the s3:TestEvent of a new configuration
    }
    from agentfiles_local.events import LambdaContext
    from functions.upload_trigger.handler import lambda_handler

    lambda_handler(
        aws.sqs_event_for("uploads", [by_key[f"files/alice/{first}"]]), LambdaContext("upload_trigger", 60)
    )
    # When the scanner scans both and its results are delivered
    assert emulated.poll_once() == 2
    assert aws.deliver("scans") == {"batchItemFailures": []}
    lambda_handler(
        aws.sqs_event_for("uploads", [by_key[f"files/alice/{second}"]]), LambdaContext("upload_trigger", 60)
    )
    # Then both are ready, and both objects carry the scan's and the check's tags
    for file_id in (first, second):
        assert _file(aws, file_id)["status"] == "ready"
        tags = aws.s3.get_object_tagging(Bucket=aws.resources.bucket_name, Key=f"files/alice/{file_id}")[
            "TagSet"
        ]
        assert {t["Key"]: t["Value"] for t in tags} == {
            SCAN_TAG_KEY: "NO_THREATS_FOUND",
            CHECKED_TAG[0]: CHECKED_TAG[1],
        }


def test_the_scanner_finds_eicar_and_configured_hashes(stack):
    aws, emulated = stack
    eicar, listed, clean = _upload(aws, scanner.EICAR), _upload(aws, CONFIGURED), _upload(aws, b"fine\n")
    aws.run_upload_trigger()
    assert emulated.poll_once() == 3
    aws.deliver("scans")
    assert _file(aws, eicar)["rejection"]["message"].startswith(
        f"the malware scan found {scanner.EICAR_THREAT}"
    )
    assert _file(aws, listed)["rejection"]["code"] == "malware"
    assert _file(aws, clean)["status"] == "ready"


def test_what_the_scanner_publishes_has_the_shape_of_the_sample(stack):
    aws, emulated = stack
    file_id = _upload(aws, scanner.EICAR)
    event = emulated.scan(f"files/alice/{file_id}")
    sample = json.loads(
        json.loads((EVENTS / "sqs_scan_result_threats_found.json").read_text())["Records"][0]["body"]
    )
    assert event is not None
    assert set(event) == set(sample) and set(event["detail"]) == set(sample["detail"])
    assert set(event["detail"]["s3ObjectDetails"]) == set(sample["detail"]["s3ObjectDetails"])
    assert event["detail"]["scanResultDetails"] == sample["detail"]["scanResultDetails"]


def test_an_object_deleted_before_its_scan_is_not_reported(stack):
    aws, emulated = stack
    file_id = _upload(aws, b"gone\n")
    aws.s3.delete_object(Bucket=aws.resources.bucket_name, Key=f"files/alice/{file_id}")
    assert emulated.scan(f"files/alice/{file_id}") is None
    assert aws.deliver("scans") is None


def test_eicar_is_recognised_as_the_standard_says():
    assert scanner.is_eicar(scanner.EICAR) and scanner.is_eicar(scanner.EICAR + b"\r\n")
    assert not scanner.is_eicar(b"prefix " + scanner.EICAR)
    assert not scanner.is_eicar(scanner.EICAR + b" and then a payload")
    with pytest.raises(ValueError, match="not a SHA-256"):
        scanner.threat_hashes_of("abc")
