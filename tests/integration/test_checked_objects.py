"""What S3 holds says which objects passed their check: the tag `checked=true`, which the
public URL mode's bucket policy requires before CloudFront may read an object. And an
object that vanished is told apart from one the trigger may not read."""

from __future__ import annotations

import base64

from botocore.awsrequest import AWSResponse

from agentfiles.topology import CHECKED_TAG
from agentfiles_local.events import LambdaContext
from functions.upload_trigger.handler import lambda_handler
from harness import samples


def _tags(aws, key: str) -> dict[str, str]:
    tagging = aws.s3.get_object_tagging(Bucket=aws.resources.bucket_name, Key=key)
    return {tag["Key"]: tag["Value"] for tag in tagging["TagSet"]}


def _register_and_put(aws, data: bytes, media_type: str, *, body: bytes | None = None) -> str:
    request = {"filename": "f", "mediaType": media_type, "size": len(data), "sha256": samples.sha256(data)}
    reply = aws.call_api("POST", "/files/uploads", json_body=request)
    assert reply.status == 201, reply.body
    file_id = reply.body["file"]["id"]
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name,
        Key=f"files/alice/{file_id}",
        Body=body or data,
        ContentType=media_type,
    )
    return file_id


def test_given_an_upload_when_it_is_pending_then_its_object_is_not_tagged_checked(aws):
    # Given bytes PUT to a presigned URL, not yet checked
    file_id = _register_and_put(aws, samples.png(), "image/png")
    # Then the object carries no checked tag
    assert CHECKED_TAG[0] not in _tags(aws, f"files/alice/{file_id}")


def test_given_an_upload_when_the_trigger_accepts_it_then_its_object_is_tagged_checked(aws):
    # Given a matching upload
    file_id = _register_and_put(aws, samples.png(), "image/png")
    # When the trigger checks it
    assert aws.run_upload_trigger() == {"batchItemFailures": []}
    # Then the file is ready and its object is tagged as checked
    assert aws.file_row("alice", file_id)["status"] == "ready"
    assert _tags(aws, f"files/alice/{file_id}") == {CHECKED_TAG[0]: CHECKED_TAG[1]}


def test_given_an_upload_when_the_trigger_rejects_it_then_nothing_checked_remains(aws):
    # Given an upload whose bytes are not the declared type
    data = b"not a png at all"
    file_id = _register_and_put(aws, data, "image/png")
    # When the trigger checks it
    aws.run_upload_trigger()
    # Then it is rejected and its object deleted, never tagged
    assert aws.file_row("alice", file_id)["status"] == "rejected"
    assert aws.object_keys() == set()


def test_given_a_small_upload_when_stored_then_its_object_is_tagged_checked_at_once(aws):
    # Given bytes checked in the request (POST /files)
    body = {"filename": "n.txt", "mediaType": "text/plain", "data": base64.b64encode(b"hello").decode()}
    reply = aws.call_api("POST", "/files", json_body=body)
    assert reply.status == 201, reply.body
    # Then the object is stored tagged as checked
    assert _tags(aws, f"files/alice/{reply.body['file']['id']}") == {CHECKED_TAG[0]: CHECKED_TAG[1]}


def test_given_an_object_gone_before_its_check_when_s3_answers_404_then_the_record_is_done(aws):
    # Given an upload whose object is deleted before the trigger runs (S3 answers 404
    # because the trigger may list the bucket)
    file_id = _register_and_put(aws, samples.png(), "image/png")
    aws.s3.delete_object(Bucket=aws.resources.bucket_name, Key=f"files/alice/{file_id}")
    # When the trigger runs / Then the record is done, and the file still pending
    assert aws.run_upload_trigger() == {"batchItemFailures": []}
    assert aws.file_row("alice", file_id)["status"] == "pending"


def test_given_s3_refuses_the_head_with_403_when_the_trigger_runs_then_the_record_is_retried(aws):
    # Given S3 answering HEAD with 403 (access denied: with s3:ListBucket granted, a
    # missing key is a 404, so a 403 is a real refusal, not a missing object)
    from agentfiles.data import clients

    file_id = _register_and_put(aws, samples.png(), "image/png")
    messages = aws.drain("uploads")

    def forbidden(**_):
        response = AWSResponse("https://s3.amazonaws.com/", 403, {}, None)
        return response, {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {}}

    s3 = clients.s3()
    s3.meta.events.register("before-call.s3.HeadObject", forbidden)
    try:
        # When the trigger checks the object
        result = lambda_handler(aws.sqs_event_for("uploads", messages), LambdaContext("upload_trigger", 60))
    finally:
        s3.meta.events.unregister("before-call.s3.HeadObject", forbidden)

    # Then the record fails (back to the queue, then the DLQ and its alarm), and the file
    # is neither dropped as missing nor marked
    (record,) = [message for message in messages if file_id in message["Body"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": record["MessageId"]}]}
    assert aws.file_row("alice", file_id)["status"] == "pending"
