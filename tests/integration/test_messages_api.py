"""Messages: saved in one transaction with exact reference counts."""

from __future__ import annotations

import base64
import json

import pytest

from agentfiles.data import file_rows
from agentfiles.models.common import now_ms
from harness import samples
from harness.calls import count_calls


def _save(aws, thread, body, *, sub="alice", key=None):
    headers = {"idempotency-key": key} if key else None
    return aws.call_api("POST", f"/threads/{thread}/messages", sub=sub, json_body=body, headers=headers)


def _messages(aws, thread, sub="alice"):
    return aws.call_api("GET", f"/threads/{thread}/messages", sub=sub).body["items"]


def test_saving_a_message_stores_it_with_a_pending_reply_and_queues_one_job(aws):
    # Given a thread
    thread = aws.new_thread()
    # When a user message is saved
    with count_calls() as calls:
        reply = _save(aws, thread, {"content": "What is in this picture?"})
    # Then it is saved with a pending assistant reply
    assert reply.status == 201
    message, pending = reply.body["message"], reply.body["reply"]
    assert message["role"] == "user" and message["content"] == [
        {"type": "text", "text": "What is in this picture?"}
    ]
    assert (
        pending["role"] == "assistant"
        and pending["status"] == "pending"
        and pending["replyTo"] == message["id"]
    )
    assert pending["id"] > message["id"]
    # And it took one transaction and one queue send
    assert calls.counts() == {"TransactWriteItems": 1, "SendMessage": 1}
    jobs = aws.drain("generations")
    assert len(jobs) == 1
    job = json.loads(jobs[0]["Body"])
    assert job == {
        "kind": "chat",
        "owner": "alice",
        "threadId": thread,
        "messageId": message["id"],
        "replyId": pending["id"],
        "model": pending["model"],
    }


def test_saving_without_generation_queues_nothing(aws):
    thread = aws.new_thread()
    reply = _save(aws, thread, {"content": "note to self", "generate": False})
    assert reply.status == 201 and reply.body["reply"] is None
    assert aws.drain("generations") == []


def test_saving_moves_the_threads_updated_at(aws):
    thread = aws.new_thread()
    before = aws.call_api("GET", f"/threads/{thread}").body["thread"]["updatedAt"]
    _save(aws, thread, {"content": "hi", "generate": False})
    assert aws.call_api("GET", f"/threads/{thread}").body["thread"]["updatedAt"] >= before


def test_each_distinct_file_gets_one_reference_however_often_it_is_named(aws):
    # Given two ready files
    a = aws.small_file(samples.png(), "image/png")["id"]
    b = aws.small_file(samples.pdf(), "application/pdf")["id"]
    thread = aws.new_thread()
    # When a message names a twice in parts and again in fileIds, and b in fileIds
    reply = _save(
        aws,
        thread,
        {
            "content": [
                {"type": "image", "fileId": a},
                {"type": "text", "text": "and"},
                {"type": "image", "fileId": a},
            ],
            "fileIds": [a, b, b],
            "generate": False,
        },
    )
    # Then each file holds exactly one reference and has left the vacuum's index
    assert reply.status == 201
    assert reply.body["message"]["fileIds"] == [a, b]
    assert aws.refcount("alice", a) == 1 and aws.refcount("alice", b) == 1
    assert "gcShard" not in aws.file_row("alice", a)


@pytest.mark.parametrize("state", ["unknown", "other_owner", "pending", "rejected", "deleting"])
def test_a_file_that_cannot_be_referenced_fails_the_save_and_moves_no_count(aws, state):
    # Given one good file and one that cannot be referenced
    good = aws.small_file(samples.png(), "image/png")["id"]
    if state == "unknown":
        bad = "01JDQ8ZK3M4N5P6Q7R8S9T0V1W"
    elif state == "other_owner":
        bad = aws.small_file(samples.jpeg(), "image/jpeg", sub="bob")["id"]
    elif state == "pending":
        bad = aws.call_api(
            "POST", "/files/uploads", json_body={"filename": "p.png", "mediaType": "image/png", "size": 10}
        ).body["file"]["id"]
    elif state == "rejected":
        data = samples.png()
        bad = aws.upload(data, "image/png", declare_sha=False, body=samples.pdf()[: len(data)])["id"]
        assert aws.file_row("alice", bad)["status"] == "rejected"
    else:
        bad = aws.small_file(b"doomed", "text/plain")["id"]
        assert file_rows.tombstone("alice", bad, now_ms()) is not None
    thread = aws.new_thread()
    # When a message references both
    reply = _save(aws, thread, {"content": "look", "fileIds": [good, bad]})
    # Then the save fails naming the bad file, and nothing was saved or counted
    assert reply.status in (404, 409)
    assert reply.body["error"]["code"] == (
        "file_not_found" if state in ("unknown", "other_owner") else "file_not_ready"
    )
    assert bad in reply.body["error"]["message"]
    assert reply.body["error"]["details"]["fileId"] == bad
    assert aws.refcount("alice", good) == 0
    assert _messages(aws, thread) == []
    assert aws.drain("generations") == []


def test_more_attachments_than_allowed_is_a_400(aws, monkeypatch):
    from agentfiles.settings import get_settings

    monkeypatch.setenv("MAX_ATTACHMENTS", "2")
    get_settings.cache_clear()
    ids = [aws.small_file(f"f{n}".encode(), "text/plain")["id"] for n in range(3)]
    thread = aws.new_thread()
    reply = _save(aws, thread, {"content": "too many", "fileIds": ids})
    assert reply.status == 400 and reply.body["error"]["code"] == "too_many_attachments"
    assert [aws.refcount("alice", i) for i in ids] == [0, 0, 0]


@pytest.mark.parametrize(
    "content",
    [
        [],
        "",
        [{"type": "image", "fileId": "01JDQ8ZK3M4N5P6Q7R8S9T0V1W", "url": "https://example.com/a.png"}],
        [{"type": "image"}],
        [{"type": "image", "url": "javascript:alert(1)"}],
        [{"type": "image", "data": "AAAA"}],
        [{"type": "file", "url": "https://example.com/a.pdf"}],
        [{"type": "video", "url": "https://example.com/a.mp4"}],
        [{"type": "text", "text": ""}],
        [{"type": "image", "fileId": "not-an-id"}],
    ],
)
def test_malformed_parts_are_a_422_and_save_nothing(aws, content):
    thread = aws.new_thread()
    reply = _save(aws, thread, {"content": content})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "validation_error"
    assert _messages(aws, thread) == []


def test_small_inline_data_stays_inline_and_large_inline_data_becomes_a_referenced_file(aws, monkeypatch):
    from agentfiles.settings import get_settings

    monkeypatch.setenv("INLINE_MAX_BYTES", "1000")
    get_settings.cache_clear()
    small = samples.png(2, 2)
    large = samples.noisy_png(32, 32)
    assert len(small) < 1000 < len(large)
    thread = aws.new_thread()
    reply = _save(
        aws,
        thread,
        {
            "content": [
                {"type": "image", "data": base64.b64encode(small).decode(), "mediaType": "image/png"},
                {"type": "image", "data": base64.b64encode(large).decode(), "mediaType": "image/png"},
            ],
            "generate": False,
        },
    )
    assert reply.status == 201, reply.body
    inline, stored = reply.body["message"]["content"]
    assert inline["data"] and inline.get("fileId") is None
    assert stored["fileId"] and stored.get("data") is None
    assert reply.body["message"]["fileIds"] == [stored["fileId"]]
    assert aws.refcount("alice", stored["fileId"]) == 1
    assert aws.file_row("alice", stored["fileId"])["sha256"] == samples.sha256(large)


def test_inline_data_that_is_not_what_it_claims_is_a_422(aws):
    thread = aws.new_thread()
    reply = _save(
        aws,
        thread,
        {
            "content": [
                {
                    "type": "image",
                    "data": base64.b64encode(b"not an image").decode(),
                    "mediaType": "image/png",
                }
            ]
        },
    )
    assert reply.status == 422 and reply.body["error"]["code"] == "type_mismatch"


def test_content_too_large_for_one_item_is_a_413(aws):
    thread = aws.new_thread()
    parts = [{"type": "text", "text": "x" * 90_000} for _ in range(5)]
    reply = _save(aws, thread, {"content": parts})
    assert reply.status == 413 and reply.body["error"]["code"] == "message_too_large"


def test_a_retry_with_the_same_idempotency_key_returns_the_saved_message(aws):
    file = aws.small_file(samples.png(), "image/png")["id"]
    thread = aws.new_thread()
    body = {"content": "once", "fileIds": [file]}
    first = _save(aws, thread, body, key="k-1")
    second = _save(aws, thread, body, key="k-1")
    assert first.status == second.status == 201
    assert second.body["message"]["id"] == first.body["message"]["id"]
    assert second.body["reply"]["id"] == first.body["reply"]["id"]
    assert len(_messages(aws, thread)) == 2  # the message and its reply, once
    assert aws.refcount("alice", file) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(aws):
    thread = aws.new_thread()
    _save(aws, thread, {"content": "first"}, key="k-2")
    reply = _save(aws, thread, {"content": "second"}, key="k-2")
    assert reply.status == 422 and reply.body["error"]["code"] == "idempotency_key_reused"


def test_when_the_queue_fails_the_message_is_saved_503_and_a_retry_completes_it(aws, monkeypatch):
    from agentfiles.settings import get_settings

    thread = aws.new_thread()
    good_url = aws.resources.queue_urls["generations"]
    # Given the generations queue cannot be reached
    monkeypatch.setenv("GENERATIONS_QUEUE_URL", good_url + "-missing")
    get_settings.cache_clear()
    # When a message is saved
    failed = _save(aws, thread, {"content": "hello"}, key="k-3")
    # Then the answer is 503, naming what was saved, and the reply waits pending
    assert failed.status == 503 and failed.body["error"]["code"] == "queue_unavailable"
    saved = _messages(aws, thread)
    assert {m["status"] for m in saved} == {"success", "pending"}
    # When the client retries with the same key once the queue is back
    monkeypatch.setenv("GENERATIONS_QUEUE_URL", good_url)
    get_settings.cache_clear()
    retried = _save(aws, thread, {"content": "hello"}, key="k-3")
    # Then it gets the same message and the job is queued
    assert retried.status == 201
    assert retried.body["message"]["id"] == failed.body["error"]["details"]["messageId"]
    assert len(aws.drain("generations")) == 1
    assert len(_messages(aws, thread)) == 2


def test_messages_list_newest_first_in_pages_with_fresh_file_urls(aws):
    file = aws.small_file(samples.png(), "image/png", filename="cat.png")["id"]
    thread = aws.new_thread()
    ids = []
    for n in range(5):
        reply = _save(
            aws,
            thread,
            {
                "content": [{"type": "text", "text": f"m{n}"}, {"type": "image", "fileId": file}],
                "generate": False,
            },
        )
        ids.append(reply.body["message"]["id"])
    with count_calls() as calls:
        page = aws.call_api("GET", f"/threads/{thread}/messages", query={"limit": "3"}).body
    # One Query for the page and one BatchGetItem for its thread and files
    assert calls.counts() == {"Query": 1, "BatchGetItem": 1}
    rest = aws.call_api("GET", f"/threads/{thread}/messages", query={"cursor": page["nextCursor"]}).body
    assert [m["id"] for m in page["items"] + rest["items"]] == list(reversed(ids))
    image = page["items"][0]["content"][1]
    assert (
        image["fileId"] == file and image["url"].startswith("https://") and image["mediaType"] == "image/png"
    )
    assert image["filename"] == "cat.png"
    # And URLs are minted on read, never stored
    stored = aws.dynamodb.get_item(
        TableName=aws.resources.table_name,
        Key={"pk": {"S": f"OWNER#alice#THREAD#{thread}"}, "sk": {"S": f"MSG#{ids[0]}"}},
    )["Item"]
    assert "url" not in json.dumps(stored)


@pytest.mark.parametrize("limit", ["0", "101", "x"])
def test_an_out_of_range_page_size_is_a_422(aws, limit):
    thread = aws.new_thread()
    reply = aws.call_api("GET", f"/threads/{thread}/messages", query={"limit": limit})
    assert reply.status == 422


def test_one_message_reads_back_and_an_unknown_one_is_404(aws):
    thread = aws.new_thread()
    saved = _save(aws, thread, {"content": "hi", "generate": False}).body["message"]
    one = aws.call_api("GET", f"/threads/{thread}/messages/{saved['id']}")
    assert one.status == 200 and one.body["message"]["id"] == saved["id"]
    missing = aws.call_api("GET", f"/threads/{thread}/messages/01JDQ8ZK3M4N5P6Q7R8S9T0V1W")
    assert missing.status == 404 and missing.body["error"]["code"] == "message_not_found"
    assert aws.call_api("GET", f"/threads/{thread}/messages/{saved['id']}", sub="bob").status == 404


def test_deleting_a_message_releases_its_files_once(aws):
    # Given a file referenced by two messages
    file = aws.small_file(samples.png(), "image/png")["id"]
    thread = aws.new_thread()
    first = _save(aws, thread, {"content": "a", "fileIds": [file], "generate": False}).body["message"]
    _save(aws, thread, {"content": "b", "fileIds": [file], "generate": False})
    assert aws.refcount("alice", file) == 2
    # When the first is deleted, in one transaction
    with count_calls() as calls:
        assert aws.call_api("DELETE", f"/threads/{thread}/messages/{first['id']}").status == 204
    assert calls.counts() == {"GetItem": 1, "TransactWriteItems": 1}
    # Then the count drops by one, and a second delete is a 404 that moves nothing
    assert aws.refcount("alice", file) == 1
    assert aws.call_api("DELETE", f"/threads/{thread}/messages/{first['id']}").status == 404
    assert aws.refcount("alice", file) == 1
    assert "gcShard" in aws.file_row("alice", file)


def test_a_referenced_file_cannot_be_deleted_until_its_messages_are(aws):
    file = aws.small_file(samples.png(), "image/png")["id"]
    thread = aws.new_thread()
    message = _save(aws, thread, {"content": "a", "fileIds": [file], "generate": False}).body["message"]
    reply = aws.call_api("DELETE", f"/files/{file}")
    assert reply.status == 409 and reply.body["error"]["code"] == "file_referenced"
    aws.call_api("DELETE", f"/threads/{thread}/messages/{message['id']}")
    assert aws.call_api("DELETE", f"/files/{file}").status == 204


def test_a_stale_delete_is_refused_so_a_count_the_message_gained_is_not_lost(aws):
    # Given a reply read before the worker attached a generated picture to it
    from agentfiles.data import message_rows

    thread = aws.new_thread()
    pending = _save(aws, thread, {"content": "draw"}).body["reply"]
    stale = message_rows.get_message("alice", thread, pending["id"])
    file = aws.small_file(samples.png(), "image/png")["id"]
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key={"pk": {"S": f"OWNER#alice#THREAD#{thread}"}, "sk": {"S": f"MSG#{pending['id']}"}},
        UpdateExpression="SET fileIds = :ids",
        ExpressionAttributeValues={":ids": {"L": [{"S": file}]}},
    )
    # When the delete built from the stale read runs
    # Then it is refused, so it cannot delete the message without releasing the file
    assert message_rows.delete_message(stale, now_ms()) is False
