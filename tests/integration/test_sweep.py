"""The sweep: stuck work (a reply whose job was lost or whose worker died, a thread
whose cleanup job was lost) gets its job again, once per run, and nothing else does.

Time moves by writing `sweepAt` / `leaseUntil` into rows, never by waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentfiles.data import keys, sweep_rows
from agentfiles.data.table import from_item, to_value
from agentfiles.logic import sweep
from agentfiles.models.common import now_ms
from agentfiles.settings import get_settings
from agentfiles_local.events import LambdaContext

MINUTE_MS = 60 * 1000


def _ample() -> int:
    return 10**9


def _set(aws, key: dict[str, Any], **attributes: Any) -> None:
    names = {f"#{name}": name for name in attributes}
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in attributes),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{name}": to_value(value) for name, value in attributes.items()},
    )


def _row(aws, key: dict[str, Any]) -> dict[str, Any] | None:
    item = aws.dynamodb.get_item(TableName=aws.resources.table_name, Key=key, ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def _lost_reply(aws) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A saved message whose pending reply's job never reached a worker, overdue."""
    thread = aws.new_thread()
    saved = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "hello?"}).body
    assert len(aws.drain("generations")) == 1  # the job is lost
    key = keys.message_key("alice", thread, saved["reply"]["id"]).dynamo
    _set(aws, key, sweepAt=now_ms() - MINUTE_MS)
    return thread, saved, key


def _jobs(aws, queue: str) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in aws.drain(queue)]


# ---- replies ----------------------------------------------------------------------


def test_given_a_pending_reply_past_its_sweep_time_when_the_sweep_runs_then_its_job_is_resent_once(aws):
    # Given a pending reply whose job was lost, past its sweep time
    thread, saved, key = _lost_reply(aws)
    # When the sweep runs
    before = now_ms()
    result = sweep.run_sweep(_ample)
    # Then its generation job is sent again, exactly as the API sent it
    assert _jobs(aws, "generations") == [
        {
            "kind": "chat",
            "owner": "alice",
            "threadId": thread,
            "messageId": saved["message"]["id"],
            "replyId": saved["reply"]["id"],
            "model": saved["reply"]["model"],
        }
    ]
    assert result.replies_resent == 1
    # And its sweep time moved a full sweep period forward
    assert _row(aws, key)["sweepAt"] >= before + get_settings().pending_reply_sweep_seconds * 1000
    # When the sweep runs again before that time
    again = sweep.run_sweep(_ample)
    # Then nothing is sent
    assert _jobs(aws, "generations") == [] and again.replies_resent == 0


def test_given_a_reply_resent_the_most_times_when_it_is_stuck_again_then_it_fails_instead(aws):
    # Given a reply whose job was re-sent MAX_REPLY_RESENDS times and never finished
    thread, saved, key = _lost_reply(aws)
    for _ in range(sweep.MAX_REPLY_RESENDS):
        assert sweep.run_sweep(_ample).replies_resent == 1
        _set(aws, key, sweepAt=now_ms() - MINUTE_MS)
    aws.drain("generations")
    # When it is stuck once more
    result = sweep.run_sweep(_ample)
    # Then the sweep fails it with a readable error instead of re-sending it forever
    assert result.replies_failed == 1 and result.replies_resent == 0
    assert _jobs(aws, "generations") == []
    reply = aws.call_api("GET", f"/threads/{thread}/messages/{saved['reply']['id']}").body["message"]
    assert reply["status"] == "failed" and reply["error"]["code"] == "generation_stuck"
    # And it leaves the sweep index
    assert "sweepShard" not in _row(aws, key)


def test_given_a_pending_reply_not_yet_due_when_the_sweep_runs_then_nothing_is_sent(aws):
    # Given a reply saved just now (its job on the queue)
    thread = aws.new_thread()
    aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "hello"})
    aws.drain("generations")
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then it reads nothing and sends nothing
    assert _jobs(aws, "generations") == []
    assert result.items_read == 0


def test_given_a_streaming_reply_whose_lease_ran_out_when_the_sweep_runs_then_its_job_is_resent(aws):
    # Given a reply a worker took and then died on: its lease ran out a minute ago
    _thread, saved, key = _lost_reply(aws)
    expired = now_ms() - MINUTE_MS
    _set(aws, key, status="streaming", leaseId="dead-worker", leaseUntil=expired, sweepAt=expired)
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then the job is sent again, for a new worker to take the reply over
    assert [job["replyId"] for job in _jobs(aws, "generations")] == [saved["reply"]["id"]]
    assert result.replies_resent == 1
    assert _row(aws, key)["sweepAt"] > now_ms()


def test_given_a_streaming_reply_under_a_live_lease_when_the_sweep_runs_then_its_sweep_waits_for_the_lease(
    aws,
):
    # Given a reply being streamed under a lease that holds for five more minutes,
    # but whose sweep time has passed
    _thread, _saved, key = _lost_reply(aws)
    lease_until = now_ms() + 5 * MINUTE_MS
    _set(aws, key, status="streaming", leaseId="live-worker", leaseUntil=lease_until, sweepAt=now_ms() - 1)
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then no job is sent, and the reply is due again when the lease ends
    assert _jobs(aws, "generations") == []
    assert _row(aws, key)["sweepAt"] == lease_until
    assert result.replies_deferred == 1 and result.replies_resent == 0


def test_given_an_ended_reply_still_marked_when_the_sweep_runs_then_it_loses_its_marker(aws):
    # Given a reply that ended but kept its sweep marker
    _thread, _saved, key = _lost_reply(aws)
    _set(aws, key, status="success")
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then nothing is sent and the reply leaves the sweep index
    assert _jobs(aws, "generations") == []
    row = _row(aws, key)
    assert "sweepShard" not in row and "sweepAt" not in row and row["status"] == "success"
    assert result.markers_removed == 1


def test_given_two_sweeps_that_read_the_same_reply_when_both_act_then_the_job_is_sent_once(aws):
    # Given two overlapping runs that both read the same overdue reply from the index
    _thread, saved, _key = _lost_reply(aws)
    shard = keys.sweep_shard(keys.REPLY_SWEEP, saved["reply"]["id"])
    [due] = sweep_rows.due_for_sweep(shard, now_ms(), 10, None).due
    # When both settle it
    outcomes = [sweep.sweep_reply(due, now_ms()), sweep.sweep_reply(due, now_ms())]
    # Then only the first sends the job
    assert outcomes == ["resent", "unchanged"]
    assert len(_jobs(aws, "generations")) == 1


def test_given_a_lost_job_resent_by_the_sweep_when_the_worker_runs_then_the_reply_completes(worker, model):
    # Given a pending reply whose job was lost, past its sweep time
    thread, saved, key = _lost_reply(worker)
    # When the sweep re-sends it and the worker takes the job
    assert sweep.run_sweep(_ample).replies_resent == 1
    worker.deliver("generations")
    # Then the reply is answered and leaves the sweep index
    row = _row(worker, key)
    assert row["status"] == "success" and "sweepShard" not in row
    reply = worker.call_api("GET", f"/threads/{thread}/messages/{saved['reply']['id']}").body["message"]
    assert reply["content"][0]["text"]


# ---- threads -----------------------------------------------------------------------


def test_given_a_deleting_thread_whose_cleanup_job_was_lost_when_the_sweep_runs_then_the_job_is_resent(aws):
    # Given a deleted thread whose cleanup job was lost, past its sweep time
    thread = aws.new_thread()
    aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "bye", "generate": False})
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 202
    assert len(aws.drain("maintenance")) == 1
    key = keys.thread_key("alice", thread).dynamo
    _set(aws, key, sweepAt=now_ms() - MINUTE_MS)
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then the cleanup job is sent again and the thread is due again later
    assert result.thread_cleanups_resent == 1
    assert _row(aws, key)["sweepAt"] > now_ms()
    messages = aws.drain("maintenance")
    assert [json.loads(m["Body"]) for m in messages] == [
        {"kind": "delete_thread", "owner": "alice", "threadId": thread}
    ]
    # And once the maintenance function has run it, the thread is gone and nothing is due
    from functions.maintenance.handler import lambda_handler

    lambda_handler(aws.sqs_event_for("maintenance", messages), LambdaContext("maintenance", 120))
    assert _row(aws, key) is None
    assert sweep.run_sweep(_ample).thread_cleanups_resent == 0


def test_given_an_active_thread_with_a_stray_marker_when_the_sweep_runs_then_the_marker_is_removed(aws):
    # Given an active thread carrying a sweep marker that is due
    thread = aws.new_thread()
    key = keys.thread_key("alice", thread).dynamo
    _set(aws, key, sweepShard=keys.sweep_shard(keys.THREAD_SWEEP, thread), sweepAt=now_ms() - MINUTE_MS)
    # When the sweep runs
    result = sweep.run_sweep(_ample)
    # Then no cleanup is sent for it, and it leaves the index
    assert aws.drain("maintenance") == []
    assert "sweepShard" not in _row(aws, key) and result.markers_removed == 1


# ---- bounded runs ------------------------------------------------------------------


def _budget(checks: int) -> Callable[[], int]:
    left = iter(range(checks))
    return lambda: 10**9 if next(left, None) is not None else 0


def test_given_little_time_when_the_sweep_runs_then_it_stops_early_and_the_next_run_continues(aws):
    # Given three overdue replies whose jobs were lost
    replies = [_lost_reply(aws)[1]["reply"]["id"] for _ in range(3)]
    # When a run has time for only two looks at the clock
    first = sweep.run_sweep(_budget(2))
    # Then it stops early
    assert first.stopped_early and first.replies_resent < 3
    # And the next run re-sends the rest, each reply once overall
    second = sweep.run_sweep(_ample)
    assert not second.stopped_early
    assert sorted(job["replyId"] for job in _jobs(aws, "generations")) == sorted(replies)
