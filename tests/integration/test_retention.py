"""Retention: a thread idle past its owner's retention is deleted by the scheduled run
exactly as DELETE /threads/{id} deletes it, a fresh one is kept, and the counts stay
exact; the run reads only what is due.

Time moves by writing `updatedAt` / `sweepAt` into thread rows, never by waiting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentfiles.data import keys
from agentfiles.data.table import from_item, to_value
from agentfiles.logic import retention, vacuum
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles_local.events import LambdaContext
from harness import samples
from harness.aws import LocalAws, local_aws

DAY_MS = 24 * 3600 * 1000
EVENTS = Path(__file__).parents[2] / "events"


@pytest.fixture
def kept30() -> Iterator[LocalAws]:
    with local_aws(THREAD_RETENTION_DAYS="30", GRACE_SECONDS="0") as aws:
        yield aws


def _ample() -> int:
    return 10**9


def _age(aws: LocalAws, thread_id: str, days: float, owner: str = "alice") -> None:
    """The thread was last written `days` ago (as its saves would have left it)."""
    at = now_ms() - int(days * DAY_MS)
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key=keys.thread_key(owner, thread_id).dynamo,
        UpdateExpression="SET updatedAt = :iso, sweepAt = :at",
        ExpressionAttributeValues={":iso": to_value(iso_from_ms(at)), ":at": to_value(at)},
    )


def _thread_row(aws: LocalAws, thread_id: str, owner: str = "alice") -> dict[str, Any] | None:
    item = aws.dynamodb.get_item(
        TableName=aws.resources.table_name, Key=keys.thread_key(owner, thread_id).dynamo, ConsistentRead=True
    ).get("Item")
    return from_item(item) if item else None


def _say(aws: LocalAws, thread_id: str, text: str, file_ids: list[str], owner: str = "alice") -> None:
    reply = aws.call_api(
        "POST",
        f"/threads/{thread_id}/messages",
        sub=owner,
        json_body={"content": text, "fileIds": file_ids, "generate": False},
    )
    assert reply.status == 201, reply.body


def _partition(aws: LocalAws, owner: str, thread_id: str) -> list[dict[str, Any]]:
    return aws.dynamodb.query(
        TableName=aws.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.thread_pk(owner, thread_id)}},
        ConsistentRead=True,
    )["Items"]


def _usage(aws: LocalAws, owner: str = "alice") -> dict[str, int]:
    return aws.call_api("GET", "/usage", sub=owner).body["storage"]


def _scheduled_run(aws: LocalAws) -> dict[str, Any]:
    from functions.vacuum.handler import lambda_handler

    event = json.loads((EVENTS / "eventbridge_schedule.json").read_text())
    return lambda_handler(event, LambdaContext("vacuum", 300))


def test_given_an_old_and_a_fresh_thread_when_the_schedule_runs_then_only_the_old_goes_and_counts_stay_exact(
    kept30,
):
    aws = kept30
    # Given a file both threads use, a file only the old thread uses, and a thread 31 days idle
    shared = aws.small_file(samples.png(), "image/png", filename="shared.png")
    lonely = aws.small_file(b"only in the old thread", "text/plain", filename="old.txt")
    old, fresh = aws.new_thread(title="old"), aws.new_thread(title="fresh")
    _say(aws, old, "look at these", [shared["id"], lonely["id"]])
    _say(aws, old, "and again", [shared["id"]])
    _say(aws, fresh, "this one stays", [shared["id"]])
    before = _usage(aws)
    old_bytes, fresh_bytes = (
        sum(int(from_item(row).get("storedBytes", 0)) for row in _partition(aws, "alice", t))
        for t in (old, fresh)
    )
    _age(aws, old, days=31)
    _age(aws, fresh, days=29)
    # When the scheduled function runs, then the maintenance worker
    summary = _scheduled_run(aws)
    assert summary["retention"]["threadsExpired"] == 1
    assert aws.run_maintenance() == {"batchItemFailures": []}
    # Then the old thread is gone, as after DELETE /threads/{id}, and the fresh one is kept
    assert aws.call_api("GET", f"/threads/{old}").status == 404
    assert _partition(aws, "alice", old) == [] and _thread_row(aws, old) is None
    assert aws.call_api("GET", f"/threads/{fresh}").status == 200
    assert len(aws.call_api("GET", f"/threads/{fresh}/messages").body["items"]) == 1
    # And the references are exact: the shared file keeps the fresh thread's, the lonely one has none
    assert aws.refcount("alice", shared["id"]) == 1
    assert aws.refcount("alice", lonely["id"]) == 0
    # And usage is exactly the files' sizes and the fresh thread's message: the old one's bytes released
    after = _usage(aws)
    assert after["files"] == before["files"] == 2
    assert after["bytes"] == shared["size"] + lonely["size"] + fresh_bytes
    assert before["bytes"] - after["bytes"] == old_bytes > 0
    # And once past grace the vacuum deletes the file nothing holds, and only that one
    result = vacuum.run_vacuum(_ample)
    assert result.files_deleted == 1
    assert aws.file_row("alice", lonely["id"]) is None
    assert keys.object_key("alice", lonely["id"]) not in aws.object_keys()
    assert aws.refcount("alice", shared["id"]) == 1
    assert _usage(aws)["files"] == 1


def test_given_retention_is_off_by_default_when_the_run_passes_then_no_thread_is_read_or_deleted(aws):
    # Given a year-old thread and no retention configured
    thread = aws.new_thread()
    _say(aws, thread, "old news", [])
    _age(aws, thread, days=365)
    # When retention runs
    result = retention.run_retention(_ample)
    # Then nothing was even read, and the thread is there
    assert result == retention.RetentionResult()
    assert aws.call_api("GET", f"/threads/{thread}").status == 200


def test_given_many_fresh_threads_and_one_old_when_the_run_passes_then_it_reads_only_the_old_one(kept30):
    aws = kept30
    # Given forty fresh threads and one old one
    for _ in range(40):
        aws.new_thread()
    old = aws.new_thread()
    _age(aws, old, days=45)
    # When retention runs
    result = retention.run_retention(_ample)
    # Then it read one index entry and that thread again, nothing of the fresh ones
    assert result.threads_expired == 1 and result.items_read == 2
    # And a second run finds nothing to read
    assert retention.run_retention(_ample).items_read == 0


def test_given_a_message_saved_after_the_run_read_the_thread_when_it_settles_then_the_thread_is_kept(kept30):
    aws = kept30
    # Given an old thread found by the run
    thread = aws.new_thread()
    _age(aws, thread, days=40)
    page = retention.retention_rows.idle_page(
        keys.sweep_shard(keys.IDLE_SWEEP, thread), now_ms() - 30 * DAY_MS, 10, None
    )
    [entry] = [e for e in page.entries if e.thread_id == thread]
    # When a message arrives before the run settles it
    _say(aws, thread, "still here", [])
    outcome = retention.settle(entry, retention.current_policy(), now_ms())
    # Then the thread is kept, with its messages
    assert outcome == "unchanged"
    assert aws.call_api("GET", f"/threads/{thread}").status == 200
    assert _thread_row(aws, thread)["status"] == "active"


def test_given_an_owner_with_a_shorter_override_when_the_run_passes_then_only_their_old_threads_go(aws):
    # Given no default retention, bob's set to 7 days by an operator, and both with 10-day-old threads
    alices, bobs = aws.new_thread("alice"), aws.new_thread("bob")
    _age(aws, alices, days=10, owner="alice")
    _age(aws, bobs, days=10, owner="bob")
    report = retention.set_retention("bob", 7)
    assert (report.days, report.source) == (7, "owner")
    # When retention runs
    result = retention.run_retention(_ample)
    # Then bob's thread is deleted, and alice's kept (her retention is off)
    assert result.threads_expired == 1 and result.threads_kept == 1
    assert aws.call_api("GET", f"/threads/{bobs}", sub="bob").status == 404
    assert aws.call_api("GET", f"/threads/{alices}", sub="alice").status == 200
    # And alice's kept thread is not read again on the next run
    assert retention.run_retention(_ample).items_read == 0


def test_given_an_owner_with_a_longer_override_when_the_run_passes_then_their_thread_waits_for_it(kept30):
    aws = kept30
    # Given a default of 30 days, alice's override of 90, and her 40-day-old thread
    retention.set_retention("alice", 90)
    thread = aws.new_thread()
    _age(aws, thread, days=40)
    # When retention runs
    first = retention.run_retention(_ample)
    # Then the thread is kept, and its entry moved to when it expires under 90 days
    assert first.threads_kept == 1 and first.threads_expired == 0
    row = _thread_row(aws, thread)
    last = now_ms() - 40 * DAY_MS
    assert abs(row["sweepAt"] - (last + 60 * DAY_MS)) < 60_000
    assert retention.run_retention(_ample).items_read == 0
    # When her override is set back to the default, her thread is re-marked at its last activity
    assert retention.set_retention("alice", "default").threads_marked == 1
    # Then the next run deletes it
    assert retention.run_retention(_ample).threads_expired == 1
    assert aws.call_api("GET", f"/threads/{thread}").status == 404


def test_given_a_run_with_no_time_left_when_it_starts_then_it_stops_and_the_next_run_finishes(kept30):
    aws = kept30
    threads = [aws.new_thread() for _ in range(3)]
    for thread in threads:
        _age(aws, thread, days=31)
    # When a run has no time to spare
    stopped = retention.run_retention(lambda: 0)
    # Then it did nothing and says so
    assert stopped.stopped_early and stopped.threads_expired == 0
    # And the next run with time deletes all three
    assert retention.run_retention(_ample).threads_expired == 3
