"""The storage quota per owner: reserved when a file is registered, released when it is
rejected, abandoned, deleted or vacuumed, refused one byte (or one file) over, and
exact at the edge. Usage is read back as a client reads it, through GET /usage."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from agentfiles.data import keys
from agentfiles.data.table import to_value
from agentfiles.logic import usage
from agentfiles.logic.vacuum import run_vacuum
from agentfiles.models.common import now_ms
from harness.aws import LocalAws, local_aws
from harness.calls import count_calls


@pytest.fixture
def quota() -> Iterator[LocalAws]:
    """100 bytes and 3 files per owner, and no grace period (garbage goes at once)."""
    with local_aws(STORAGE_QUOTA_BYTES="100", STORAGE_QUOTA_FILES="3", GRACE_SECONDS="0") as aws:
        yield aws


def _register(aws: LocalAws, size: int, sub: str = "alice") -> tuple[int, dict]:
    body = {"filename": "n.txt", "mediaType": "text/plain", "size": size}
    reply = aws.call_api("POST", "/files/uploads", sub=sub, json_body=body)
    return reply.status, reply.body


def _storage(aws: LocalAws, sub: str = "alice") -> dict:
    reply = aws.call_api("GET", "/usage", sub=sub)
    assert reply.status == 200, reply.body
    return reply.body["storage"]


def _file_rows(aws: LocalAws, sub: str = "alice") -> int:
    return aws.dynamodb.query(
        TableName=aws.resources.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :file)",
        ExpressionAttributeValues={":pk": {"S": keys.owner_pk(sub)}, ":file": {"S": "FILE#"}},
        Select="COUNT",
    )["Count"]


def test_a_registration_that_fills_the_quota_exactly_passes_and_one_byte_more_is_refused(quota):
    # Given 60 of alice's 100 bytes registered
    assert _register(quota, 60)[0] == 201
    # When she registers exactly the 40 left
    status, _ = _register(quota, 40)
    # Then it passes, and her usage is exactly the quota
    assert status == 201
    assert _storage(quota) == {"bytes": 100, "files": 2, "quotaBytes": 100, "quotaFiles": 3}
    # When she registers one byte more
    status, body = _register(quota, 1)
    # Then it is refused with 413, saying what is used, and nothing is written
    assert status == 413
    assert body["error"]["code"] == "storage_quota_exceeded"
    assert body["error"]["details"] == {
        "size": 1,
        "usedBytes": 100,
        "usedFiles": 2,
        "quotaBytes": 100,
        "quotaFiles": 3,
    }
    assert _file_rows(quota) == 2
    assert _storage(quota)["bytes"] == 100
    # And another owner's quota is untouched
    assert _register(quota, 100, sub="bob")[0] == 201


def test_the_file_count_is_a_quota_of_its_own(quota):
    # Given three one-byte files, the most alice may have
    for _ in range(3):
        assert _register(quota, 1)[0] == 201
    # When she registers a fourth, though bytes are left
    status, body = _register(quota, 1)
    # Then it is refused
    assert status == 413 and body["error"]["code"] == "storage_quota_exceeded"
    assert _storage(quota) == {"bytes": 3, "files": 3, "quotaBytes": 100, "quotaFiles": 3}


def test_a_file_larger_than_the_whole_quota_is_refused_on_an_empty_account(quota):
    # Given no file yet / When alice registers 101 bytes
    status, body = _register(quota, 101)
    # Then the quota refuses it, though her usage row does not exist yet
    assert status == 413 and body["error"]["details"]["usedBytes"] == 0
    assert _file_rows(quota) == 0


def test_a_small_upload_is_counted_at_its_size_and_refused_one_byte_over(quota):
    # Given a 99-byte file stored through POST /files
    quota.small_file(b"a" * 99, "text/plain")
    # When one byte more is stored, then another
    quota.small_file(b"b", "text/plain")
    over = quota.call_api(
        "POST",
        "/files",
        json_body={"filename": "c", "mediaType": "text/plain", "data": base64.b64encode(b"c").decode()},
    )
    # Then the first fills the quota exactly and the second is refused, its bytes never stored
    assert over.status == 413 and over.body["error"]["code"] == "storage_quota_exceeded"
    assert _storage(quota)["bytes"] == 100
    assert len(quota.object_keys()) == 2


def test_a_dedup_hit_costs_nothing_even_with_the_quota_full(quota):
    # Given alice's quota filled by one file
    quota.small_file(b"x" * 100, "text/plain")
    # When she uploads the same content again, both ways
    again = quota.small_file(b"x" * 100, "text/plain")
    registered = quota.register(b"x" * 100, "text/plain")
    # Then both are dedup hits on the file she has, and her usage did not move
    assert registered.status == 200 and registered.body["deduplicated"] is True
    assert again["id"] == registered.body["file"]["id"]
    assert _storage(quota) == {"bytes": 100, "files": 1, "quotaBytes": 100, "quotaFiles": 3}


def test_a_rejected_upload_releases_its_reservation(quota):
    # Given 10 bytes registered, and 9 bytes put instead
    reply = quota.register(b"0123456789", "text/plain")
    file_id = reply.body["file"]["id"]
    assert _storage(quota)["bytes"] == 10
    quota.s3.put_object(Bucket=quota.resources.bucket_name, Key=f"files/alice/{file_id}", Body=b"012345678")
    # When the upload trigger checks it
    quota.run_upload_trigger()
    # Then the file is rejected and no longer counted, though its row is still there
    assert quota.file_row("alice", file_id)["status"] == "rejected"
    assert _storage(quota) == {"bytes": 0, "files": 0, "quotaBytes": 100, "quotaFiles": 3}


def test_a_checked_upload_stays_counted_at_its_checked_size(quota):
    # Given 10 bytes registered and uploaded as declared / When checked
    file = quota.upload(b"0123456789", "text/plain")
    # Then the file is ready and counted at the size the trigger checked
    assert file["status"] == "ready" and file["size"] == 10
    assert _storage(quota)["bytes"] == 10


def test_deleting_a_file_releases_it(quota):
    # Given a ready file
    file = quota.small_file(b"hello", "text/plain")
    # When alice deletes it
    assert quota.call_api("DELETE", f"/files/{file['id']}").status == 204
    # Then her usage is back to nothing
    assert _storage(quota)["bytes"] == 0 and _storage(quota)["files"] == 0


def test_an_abandoned_upload_is_released_when_the_vacuum_removes_it(quota):
    # Given a registration whose upload never came, and whose URL has expired
    _, body = _register(quota, 50)
    file_id = body["file"]["id"]
    quota.dynamodb.update_item(
        TableName=quota.resources.table_name,
        Key=keys.file_key("alice", file_id).dynamo,
        UpdateExpression="SET uploadExpiresAt = :past",
        ExpressionAttributeValues={":past": to_value(now_ms() - 1)},
    )
    assert _storage(quota)["bytes"] == 50
    # When the vacuum runs
    result = run_vacuum(lambda: 10**9)
    # Then the row is gone, and so is its reservation
    assert result.files_deleted == 1
    assert quota.file_row("alice", file_id) is None
    assert _storage(quota) == {"bytes": 0, "files": 0, "quotaBytes": 100, "quotaFiles": 3}


def test_an_unreferenced_ready_file_is_released_when_the_vacuum_removes_it(quota):
    # Given a ready file nothing references (the grace period is 0)
    quota.small_file(b"garbage", "text/plain")
    # When the vacuum runs
    run_vacuum(lambda: 10**9)
    # Then its bytes are no longer counted
    assert _storage(quota)["bytes"] == 0


def test_an_inline_part_over_the_quota_fails_the_save_with_413_and_saves_nothing():
    with local_aws(STORAGE_QUOTA_BYTES="1000", INLINE_MAX_BYTES="10") as aws:
        # Given a message whose inline part (over INLINE_MAX_BYTES) would be stored as a
        # file of 2000 bytes, more than the quota
        thread = aws.new_thread()
        data = base64.b64encode(b"y" * 2000).decode()
        part = {"type": "file", "data": data, "mediaType": "text/plain", "filename": "big.txt"}
        # When it is saved
        reply = aws.call_api(
            "POST", f"/threads/{thread}/messages", json_body={"content": [part], "generate": False}
        )
        # Then 413, and neither the message nor a file exists
        assert reply.status == 413 and reply.body["error"]["code"] == "storage_quota_exceeded"
        assert aws.call_api("GET", f"/threads/{thread}/messages").body["items"] == []
        assert _file_rows(aws) == 0 and not aws.object_keys()


def test_an_operators_quota_for_one_owner_replaces_the_default(quota):
    # Given an operator who gives alice 10 bytes (the default is 100)
    report = usage.set_quota("alice", quota_bytes=10)
    assert report.storage.quota_bytes == 10 and report.overrides.bytes == 10
    # When she registers 10 bytes, then 1 more
    with count_calls() as calls:
        first = _register(quota, 10)[0]
    second, body = _register(quota, 1)
    # Then the first fills her quota and the second is refused under it
    assert first == 201
    assert second == 413 and body["error"]["details"]["quotaBytes"] == 10
    # And GET /usage shows her quota, not the default
    assert _storage(quota)["quotaBytes"] == 10
    # The registration assumed the default, was refused, and was tried again under the
    # quota the refusal showed: two transactions, no read
    assert calls.counts()["TransactWriteItems"] == 2 and "GetItem" not in calls.counts()


def test_an_operator_can_raise_a_quota_above_the_default_and_go_back_to_it(quota):
    # Given alice at her default quota of 100 bytes
    assert _register(quota, 100)[0] == 201
    # When an operator raises it to 1000
    usage.set_quota("alice", quota_bytes=1000, quota_files=10)
    # Then she may register more
    assert _register(quota, 900)[0] == 201
    assert _storage(quota) == {"bytes": 1000, "files": 2, "quotaBytes": 1000, "quotaFiles": 10}
    # When the operator goes back to the defaults
    usage.set_quota("alice", quota_bytes="default", quota_files="default")
    # Then she is over quota: what she has stays, and nothing new fits until files go
    assert _storage(quota) == {"bytes": 1000, "files": 2, "quotaBytes": 100, "quotaFiles": 3}
    assert _register(quota, 1)[0] == 413


def test_a_registration_at_the_default_quota_is_one_transaction_and_nothing_else(quota):
    # Given an owner without an operator's quota / When a file is registered
    with count_calls() as calls:
        status, _ = _register(quota, 5)
    # Then the row and its reservation took one TransactWriteItems, and nothing more
    assert status == 201
    assert calls.counts() == {"TransactWriteItems": 1}
