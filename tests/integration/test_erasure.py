"""Erasure: DELETE /account removes every row and object of the owner, in the
background, resumable after a crash, while the owner's writes are refused; another
owner's rows, objects, usage and counts do not move; a record without content is kept."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from agentfiles.data import connection_rows, erasure_rows, keys
from agentfiles.data.table import from_item
from agentfiles.logic import erasure
from agentfiles.models.common import now_ms
from agentfiles.settings import get_settings
from agentfiles_local.events import LambdaContext
from harness import samples
from harness.aws import LocalAws, while_writing


class SimulatedCrash(BaseException):
    """The process dies mid-run: nothing in the run can catch it."""


@pytest.fixture
def stack(worker: LocalAws) -> LocalAws:
    """The integration suite's stack wired for generation (conftest's `worker`)."""
    return worker


def _ample() -> int:
    return 10**9


def _settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writes begun before the fence can no longer be running."""
    monkeypatch.setenv("ERASURE_SETTLE_SECONDS", "0")
    get_settings.cache_clear()


def _items(aws: LocalAws) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    start = None
    while True:
        page = aws.dynamodb.scan(
            TableName=aws.resources.table_name, **({"ExclusiveStartKey": start} if start else {})
        )
        items += [from_item(item) for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _of(owner: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mine = keys.owner_pk(owner)
    return [i for i in items if i["pk"] == mine or i["pk"].startswith(mine + "#")]


def _objects_of(aws: LocalAws, owner: str) -> set[str]:
    return {key for key in aws.object_keys() if f"/{owner}/" in f"/{key}"}


def _say(aws: LocalAws, owner: str, thread: str, content: Any, **body: Any) -> dict[str, Any]:
    reply = aws.call_api(
        "POST", f"/threads/{thread}/messages", sub=owner, json_body={"content": content, **body}
    )
    assert reply.status == 201, reply.body
    return reply.body


def _account_with_things(aws: LocalAws, owner: str) -> dict[str, Any]:
    """Two threads with images, a PDF and a text file, messages that hold them, a rate
    window, and a retention override: something of every kind of row."""
    picture = aws.upload(samples.png(40, 30), "image/png", sub=owner, filename="photo.png")
    report = aws.upload(samples.pdf(pages=2), "application/pdf", sub=owner, filename="report.pdf")
    notes = aws.small_file(f"notes of {owner}".encode(), "text/plain", sub=owner, filename="notes.txt")
    first, second = aws.new_thread(owner, "first"), aws.new_thread(owner, "second")
    _say(
        aws,
        owner,
        first,
        [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": picture["id"]}],
        generate=False,
    )
    _say(aws, owner, second, "and these", fileIds=[report["id"], notes["id"]], generate=False)
    aws.dynamodb.put_item(
        TableName=aws.resources.table_name,
        Item={"pk": {"S": keys.owner_pk(owner)}, "sk": {"S": "RETENTION"}, "days": {"N": "30"}},
    )
    return {"files": [picture, report, notes], "threads": [first, second]}


def _in_background(target: Any) -> threading.Thread:
    runner = threading.Thread(target=target)
    runner.start()
    return runner


def test_given_a_streaming_reply_and_a_half_done_upload_when_the_account_is_erased_then_nothing_of_it_is_left(
    stack, model, monkeypatch
):
    aws = stack
    # Given bob's account, and how his usage and counts stand
    bobs = _account_with_things(aws, "bob")
    bob_items, bob_objects = _of("bob", _items(aws)), _objects_of(aws, "bob")
    bob_usage = aws.call_api("GET", "/usage", sub="bob").body["storage"]
    # And alice's, with an open connection, an upload registered and PUT but not yet checked,
    alices = _account_with_things(aws, "alice")
    connection_rows.open_connection("alice", "conn-1", now_ms(), now_ms() // 1000 + 3600)
    half = aws.register(samples.png(20, 20, color=(9, 9, 9)), "image/png", sub="alice").body["file"]
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name,
        Key=keys.object_key("alice", half["id"]),
        Body=samples.png(20, 20, color=(9, 9, 9)),
        ContentType="image/png",
    )
    # and a reply being streamed
    late_events = aws.drain("uploads")  # the upload's event is still on its way
    model.configure(chunk_delay_s=0.002, word_count=20_000)
    thread = alices["threads"][0]
    reply_id = _say(aws, "alice", thread, "go on and on")["reply"]["id"]
    runner = _in_background(lambda: aws.deliver("generations"))
    deadline = time.monotonic() + 30
    while not while_writing(
        lambda: aws.dynamodb.query(
            TableName=aws.resources.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :delta)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.thread_pk("alice", thread)},
                ":delta": {"S": keys.stream_prefix(reply_id)},
            },
        )["Items"]
    ):
        assert time.monotonic() < deadline, "the reply never streamed"
        time.sleep(0.01)

    # When alice erases her account
    asked = aws.call_api("DELETE", "/account", sub="alice")
    # Then it is accepted, pending, and her writes are refused while it runs
    assert asked.status == 202 and asked.body["erasure"]["status"] == "pending"
    refused = aws.call_api("POST", "/threads", sub="alice", json_body={})
    assert refused.status == 409 and refused.body["error"]["code"] == "account_erasing"
    # When the maintenance worker runs it, while the reply is still being written
    assert aws.deliver("maintenance") == {"batchItemFailures": []}
    runner.join(30)
    assert not runner.is_alive()
    # And the upload's check arrives late, after the object is gone
    from functions.upload_trigger.handler import lambda_handler as check_upload

    assert late_events
    check_upload(aws.sqs_event_for("uploads", late_events), LambdaContext("upload_trigger", 60))
    # And once no write begun before it can still be running, it looks again and finishes
    _settle_at_once(monkeypatch)
    assert erasure.run_erasure("alice", _ample).done
    # Then nothing of alice is left in the table but the record of her erasure
    assert [(i["pk"], i["sk"]) for i in _of("alice", _items(aws))] == [(keys.owner_pk("alice"), "ERASURE")]
    # And nothing under her prefixes in the bucket
    assert _objects_of(aws, "alice") == set()
    # And the reply's worker stopped on the sealed stream, not at the end of its answer
    assert model.calls[-1]["chunks_sent"] < 10_000
    # And bob's rows, objects, usage and counts are exactly as they were
    assert _of("bob", _items(aws)) == bob_items
    assert _objects_of(aws, "bob") == bob_objects
    assert aws.call_api("GET", "/usage", sub="bob").body["storage"] == bob_usage
    assert [aws.refcount("bob", f["id"]) for f in bobs["files"]] == [1, 1, 1]
    # And the record says what went, without content
    account = aws.call_api("GET", "/account", sub="alice").body["account"]
    assert account["owner"] == "alice" and account["erasure"]["status"] == "done"
    counts = account["erasure"]["counts"]
    assert counts["threads"] == 2 and counts["connections"] == 1
    assert counts["objects"] >= 4 and counts["rows"] >= 5 and counts["threadRows"] >= 3
    assert "finishedAt" in account["erasure"]
    # And once it is done the account is a new, empty one
    assert aws.call_api("GET", "/threads", sub="alice").body["items"] == []
    assert aws.call_api("POST", "/threads", sub="alice", json_body={}).status == 201


def test_given_an_erasure_that_crashed_midway_when_it_runs_again_then_it_resumes_and_finishes(
    stack, monkeypatch
):
    aws = stack
    # Given alice's account and an erasure whose worker dies after its third page of deletes
    _account_with_things(aws, "alice")
    _settle_at_once(monkeypatch)
    aws.call_api("DELETE", "/account", sub="alice")
    real_delete = erasure_rows.delete
    calls = {"n": 0}

    def dies_on_the_third(row_keys):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SimulatedCrash
        return real_delete(row_keys)

    monkeypatch.setattr(erasure_rows, "delete", dies_on_the_third)
    with pytest.raises(SimulatedCrash):
        erasure.run_erasure("alice", _ample)
    # Then part of it is gone, the rest is still there, and her writes are still refused
    record = erasure_rows.get_erasure("alice")
    assert record.status == "pending" and record.phase == "threads"
    assert len([i for i in _of("alice", _items(aws)) if i["sk"].startswith("THREAD#")]) >= 1
    assert aws.call_api("POST", "/threads", sub="alice", json_body={}).status == 409
    # When the job is delivered again
    monkeypatch.setattr(erasure_rows, "delete", real_delete)
    assert erasure.run_erasure("alice", _ample).done
    # Then it finished: nothing but its record left, in the table or the bucket
    assert [i["sk"] for i in _of("alice", _items(aws))] == ["ERASURE"]
    assert _objects_of(aws, "alice") == set()
    assert erasure_rows.get_erasure("alice").counts.threads == 2
    # And running it again changes nothing
    assert erasure.run_erasure("alice", _ample).done


def test_given_an_erasure_out_of_time_when_its_job_runs_then_it_continues_in_a_new_job(stack, monkeypatch):
    aws = stack
    _account_with_things(aws, "alice")
    _settle_at_once(monkeypatch)
    aws.call_api("DELETE", "/account", sub="alice")
    # When a run has no time to spare
    step = erasure.run_erasure("alice", lambda: 0)
    # Then it did nothing, says it is not done, and the next run finishes
    assert not step.done
    assert erasure.run_erasure("alice", _ample).done


def test_given_an_erasure_pending_when_it_is_asked_again_then_it_goes_on_and_writes_stay_refused(stack):
    aws = stack
    thread = aws.new_thread("alice")
    first = aws.call_api("DELETE", "/account", sub="alice").body["erasure"]
    second = aws.call_api("DELETE", "/account", sub="alice").body["erasure"]
    # Then it is the same erasure
    assert second["requestedAt"] == first["requestedAt"] and second["status"] == "pending"
    # And every kind of write is refused, while reads answer
    for method, path, body in (
        ("POST", "/threads", {}),
        ("POST", f"/threads/{thread}/messages", {"content": "hi"}),
        ("DELETE", f"/threads/{thread}", None),
        ("POST", "/files/uploads", {"filename": "a.png", "mediaType": "image/png", "size": 10}),
    ):
        reply = aws.call_api(method, path, sub="alice", json_body=body)
        assert (reply.status, reply.body["error"]["code"]) == (409, "account_erasing"), path
    assert aws.call_api("GET", f"/threads/{thread}", sub="alice").status == 200
    # And another owner writes as ever
    assert aws.call_api("POST", "/threads", sub="bob", json_body={}).status == 201
