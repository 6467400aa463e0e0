"""A message's content is storage: its bytes (text and inline data, as stored in its row)
count on the owner's storage quota from the save's transaction until every path that
deletes the message (its own delete, its thread's purge) releases them, in the delete's
transaction. So `generate: false` messages, which no rate limits, are bounded too."""

from __future__ import annotations

import base64
import json

import pytest

from agentfiles.data import usage_rows
from agentfiles.settings import get_settings

QUOTA = 20_000


@pytest.fixture
def small_quota(aws, monkeypatch):
    monkeypatch.setenv("STORAGE_QUOTA_BYTES", str(QUOTA))
    get_settings.cache_clear()
    return aws


def _stored(text: str) -> int:
    """The bytes a text part takes in a message row: its JSON, as UTF-8."""
    return len(json.dumps({"type": "text", "text": text}, separators=(",", ":")).encode())


def _used(aws, sub="alice") -> int:
    return aws.call_api("GET", "/usage", sub=sub).body["storage"]["bytes"]


def _save(aws, thread, content, sub="alice"):
    body = {"content": content, "generate": False}
    return aws.call_api("POST", f"/threads/{thread}/messages", sub=sub, json_body=body)


def test_given_a_small_quota_when_messages_without_replies_are_saved_then_they_stop_at_the_quota(small_quota):
    aws = small_quota
    # Given an owner with a 20,000-byte quota, and text whose stored part is ~5 KB
    thread = aws.new_thread()
    text = "x" * 5_000
    size = _stored(text)
    # When they save messages that ask for no reply, again and again
    answers = [_save(aws, thread, text) for _ in range(6)]
    # Then the first three are saved, each counted at its stored size, and the rest are
    # refused with the quota's 413, nothing saved
    assert [a.status for a in answers] == [201, 201, 201, 413, 413, 413]
    refused = answers[3].body["error"]
    assert refused["code"] == "storage_quota_exceeded"
    assert refused["details"]["usedBytes"] == 3 * size and refused["details"]["quotaBytes"] == QUOTA
    assert _used(aws) == 3 * size <= QUOTA
    assert len(aws.call_api("GET", f"/threads/{thread}/messages").body["items"]) == 3
    # And another owner's messages are counted on their own storage only
    assert _save(aws, aws.new_thread(sub="bob"), text, sub="bob").status == 201
    assert _used(aws) == 3 * size and _used(aws, "bob") == size


def test_given_inline_data_parts_when_saved_then_their_bytes_count_as_stored(small_quota):
    aws = small_quota
    # Given inline data under INLINE_MAX_BYTES, which stays inside the message row
    thread = aws.new_thread()
    data = base64.b64encode(b"a, b, c\n" * 800).decode()
    parts = [{"type": "file", "data": data, "mediaType": "text/csv", "filename": "t.csv"}]
    # When it is saved, until the quota is reached
    first = _save(aws, thread, parts)
    assert first.status == 201, first.body
    used = _used(aws)
    # Then the stored part's bytes (its base64 included) are what counts
    assert used > len(data)
    statuses = [_save(aws, thread, parts).status for _ in range(4)]
    assert statuses.count(201) == QUOTA // used - 1 and 413 in statuses
    assert _used(aws) <= QUOTA


def test_given_saved_messages_when_one_is_deleted_then_its_bytes_are_released_exactly(small_quota):
    aws = small_quota
    # Given two saved messages
    thread = aws.new_thread()
    kept = _save(aws, thread, "k" * 3_000).body["message"]
    gone = _save(aws, thread, "g" * 7_000).body["message"]
    both = _used(aws)
    # When one is deleted
    assert aws.call_api("DELETE", f"/threads/{thread}/messages/{gone['id']}").status == 204
    # Then exactly its bytes are released, and the room is usable again
    assert _used(aws) == both - _stored("g" * 7_000)
    assert _used(aws) == _stored("k" * 3_000)
    assert kept["id"]


def test_given_a_thread_of_messages_when_it_is_deleted_and_purged_then_all_their_bytes_are_released(
    small_quota,
):
    aws = small_quota
    # Given a thread of messages holding most of the quota, and a file
    file = aws.small_file(b"notes", "text/plain")
    file_bytes = _used(aws)
    thread = aws.new_thread()
    for _ in range(3):
        assert _save(aws, thread, "m" * 4_000).status == 201
    with_file = [{"type": "text", "text": "see"}, {"type": "file", "fileId": file["id"]}]
    assert _save(aws, thread, with_file).status == 201
    assert _used(aws) > 12_000
    # When the thread is deleted and its cleanup runs
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 202
    aws.run_maintenance()
    # Then only the file is left counted
    assert _used(aws) == file_bytes
    assert usage_rows.storage("alice").files == 1


def test_given_an_operators_larger_quota_when_messages_are_saved_then_it_is_the_one_in_force(small_quota):
    aws = small_quota
    # Given an override of 50,000 bytes for this owner
    usage_rows.set_quota("alice", quota_bytes=50_000, quota_files=None)
    thread = aws.new_thread()
    # When 5 KB messages are saved / Then nine fit, not three
    statuses = [_save(aws, thread, "y" * 5_000).status for _ in range(10)]
    assert statuses == [201] * 9 + [413]
