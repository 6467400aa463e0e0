"""The upload trigger: S3 notification → SQS → function, on moto."""

from __future__ import annotations

import json
from pathlib import Path

from agentfiles_local.events import LambdaContext, s3_notification, sqs_event, sqs_record
from functions.upload_trigger.handler import lambda_handler
from harness import samples
from harness.calls import count_calls

EVENTS = Path(__file__).parents[2] / "events"


def _register(
    aws, data: bytes, media_type: str, *, sub: str = "alice", sha: bool = True, size: int | None = None
):
    body = {"filename": "f", "mediaType": media_type, "size": size or len(data)}
    if sha:
        body["sha256"] = samples.sha256(data)
    reply = aws.call_api("POST", "/files/uploads", sub=sub, json_body=body)
    assert reply.status == 201, reply.body
    return reply.body["file"]


def _put(aws, sub: str, file_id: str, data: bytes, media_type: str) -> None:
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name, Key=f"files/{sub}/{file_id}", Body=data, ContentType=media_type
    )


def test_the_s3_test_event_is_skipped(aws):
    # Given the TestEvent S3 sends when the notification is configured
    event = json.loads((EVENTS / "sqs_s3_test_event.json").read_text())
    # When the trigger receives it
    result = lambda_handler(event, LambdaContext("upload_trigger", 60))
    # Then nothing fails
    assert result == {"batchItemFailures": []}


def test_a_matching_upload_becomes_ready_and_claims_the_owners_hash(aws):
    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], data, "image/png")
    assert aws.run_upload_trigger() == {"batchItemFailures": []}
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and row["sha256"] == samples.sha256(data)
    hash_row = aws.dynamodb.get_item(
        TableName=aws.resources.table_name,
        Key={"pk": {"S": "OWNER#alice"}, "sk": {"S": f"HASH#{samples.sha256(data)}"}},
    )["Item"]
    assert hash_row["fileId"]["S"] == file["id"]


def test_the_real_sample_event_shape_is_understood(aws):
    # Given the sample notification from events/, pointed at a registered upload
    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], data, "image/png")
    aws.drain("uploads")
    event = json.loads((EVENTS / "sqs_s3_object_created.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = f"files/alice/{file['id']}"
    body["Records"][0]["s3"]["object"]["eTag"] = None
    event["Records"][0]["body"] = json.dumps(body)
    # When the trigger runs on it
    assert lambda_handler(event, LambdaContext("upload_trigger", 60)) == {"batchItemFailures": []}
    # Then the file is ready
    assert aws.file_row("alice", file["id"])["status"] == "ready"


def test_bytes_of_another_type_are_rejected_and_their_object_deleted(aws):
    # Given a PNG registration whose uploaded bytes are a PDF of the same size
    pdf = samples.pdf()
    file = _register(aws, pdf, "image/png", sha=False)
    _put(aws, "alice", file["id"], pdf, "image/png")
    # When the trigger checks it
    aws.run_upload_trigger()
    # Then the file is rejected with a readable reason and its object is gone
    reply = aws.call_api("GET", f"/files/{file['id']}").body["file"]
    assert reply["status"] == "rejected"
    assert reply["rejection"]["code"] == "type_mismatch"
    assert "application/pdf" in reply["rejection"]["message"] and reply.get("url") is None
    assert aws.object_keys() == set()


def test_bytes_of_another_size_are_rejected(aws):
    data = samples.png()
    file = _register(aws, data, "image/png", sha=False, size=len(data) + 10)
    _put(aws, "alice", file["id"], data, "image/png")
    aws.run_upload_trigger()
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "rejected" and row["rejection"]["code"] == "size_mismatch"
    assert aws.object_keys() == set()


def test_bytes_that_differ_from_the_declared_checksum_are_rejected(aws):
    # Given a declared sha256 and other bytes of the same size and type (moto, unlike S3,
    # accepts them; the trigger must catch it)
    data = samples.png(color=(1, 2, 3))
    other = samples.png(color=(3, 2, 1))
    assert len(data) == len(other) and data != other
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], other, "image/png")
    aws.run_upload_trigger()
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "rejected" and row["rejection"]["code"] == "checksum_mismatch"


def test_a_text_file_that_is_not_utf8_is_rejected(aws):
    data = "café".encode("latin-1") * 10
    file = _register(aws, data, "text/plain", sha=False)
    _put(aws, "alice", file["id"], data, "text/plain")
    aws.run_upload_trigger()
    assert aws.file_row("alice", file["id"])["rejection"]["code"] == "type_mismatch"


def test_without_a_declared_checksum_the_trigger_hashes_the_object_for_dedup(aws):
    data = b"# notes\n" * 100
    file = _register(aws, data, "text/markdown", sha=False)
    _put(aws, "alice", file["id"], data, "text/markdown")
    aws.run_upload_trigger()
    assert aws.file_row("alice", file["id"])["sha256"] == samples.sha256(data)


def test_redelivery_of_the_same_record_changes_nothing(aws):
    # Given an upload already checked
    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], data, "image/png")
    messages = aws.drain("uploads")
    event = aws.sqs_event_for("uploads", messages)
    lambda_handler(event, LambdaContext("upload_trigger", 60))
    before = aws.file_row("alice", file["id"])
    # When the same record arrives again
    with count_calls() as calls:
        assert lambda_handler(event, LambdaContext("upload_trigger", 60)) == {"batchItemFailures": []}
    # Then the row is unchanged, and S3 was asked only whether the object is still the
    # one checked (its ETag and Content-Type), not read
    assert aws.file_row("alice", file["id"]) == before
    assert calls.names() == ["GetItem", "HeadObject"]


def test_a_checksum_s3_verified_means_one_head_and_one_4kib_read_whatever_the_size(aws):
    # Given S3's behaviour on AWS, which moto lacks: HEAD reports the SHA-256 that S3
    # verified on upload (emulated here by adding it to moto's HEAD response)
    from agentfiles.data import blobs, clients

    # (a text file: documents and images are read whole, to make what is derived from them)
    data = b"# notes\n" + b"a line of notes\n" * 12_500  # 200 KB
    file = _register(aws, data, "text/markdown")
    _put(aws, "alice", file["id"], data, "text/markdown")
    s3 = clients.s3()

    def report_checksum(parsed, **_):
        parsed["ChecksumSHA256"] = blobs.sha256_hex_to_b64(samples.sha256(data))

    s3.meta.events.register("after-call.s3.HeadObject", report_checksum)
    messages = aws.drain("uploads")
    # When the trigger checks a 200 KB object
    with count_calls() as calls:
        lambda_handler(aws.sqs_event_for("uploads", messages), LambdaContext("upload_trigger", 60))
    # Then it made one HEAD and one ranged GET of 4 KiB, tagged the object checked, and
    # the file is ready
    s3_calls = [(name, params) for service, name, params in calls.calls if service == "s3"]
    assert [name for name, _ in s3_calls] == ["HeadObject", "GetObject", "PutObjectTagging"]
    assert s3_calls[1][1]["headers"]["Range"] == "bytes=0-4095"
    assert aws.file_row("alice", file["id"])["status"] == "ready"


def test_an_object_without_a_file_row_is_removed(aws):
    # Given an object under a key no file row claims
    aws.drain("uploads")
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name, Key="files/alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W", Body=b"x"
    )
    # When the trigger sees it
    aws.run_upload_trigger()
    # Then it is deleted
    assert aws.object_keys() == set()


def test_url_encoded_keys_are_decoded(aws):
    # Given an owner whose id S3 URL-encodes in notifications
    sub = "user+1@example.com"
    data = samples.png()
    file = _register(aws, data, "image/png", sub=sub)
    _put(aws, sub, file["id"], data, "image/png")
    aws.drain("uploads")
    body = s3_notification(aws.resources.bucket_name, f"files/{sub}/{file['id']}", len(data), "")
    assert "%2B" in body or "%40" in body
    event = sqs_event([sqs_record(body, aws.resources.queue_arns["uploads"])])
    lambda_handler(event, LambdaContext("upload_trigger", 60))
    assert aws.file_row(sub, file["id"])["status"] == "ready"


def test_a_bad_record_fails_alone_and_the_rest_of_the_batch_is_done(aws):
    # Given a batch with one unreadable record and one real upload
    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], data, "image/png")
    good = aws.drain("uploads")
    event = aws.sqs_event_for("uploads", good)
    bad = sqs_record("this is not json", aws.resources.queue_arns["uploads"])
    event["Records"].append(bad)
    # When the trigger runs
    result = lambda_handler(event, LambdaContext("upload_trigger", 60))
    # Then only the bad record is reported failed
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert aws.file_row("alice", file["id"])["status"] == "ready"


def test_a_file_purged_while_it_was_being_checked_leaves_no_object(aws, monkeypatch):
    # Given an upload whose file is deleted between the trigger's read and its ready write
    from agentfiles.logic import files as file_logic
    from agentfiles.logic import inspection

    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, "alice", file["id"], data, "image/png")
    real_mark_ready = inspection.file_rows.mark_ready

    def purged_first(record, *args, **kwargs):
        file_logic.delete_file("alice", record.id)
        return real_mark_ready(record, *args, **kwargs)

    monkeypatch.setattr(inspection.file_rows, "mark_ready", purged_first)
    # When the trigger finishes its check
    aws.run_upload_trigger()
    # Then neither the row nor the object is left
    assert aws.file_row("alice", file["id"]) is None
    assert aws.object_keys() == set()
