"""A chat reply's lease is a heartbeat: its worker renews it as it streams, so a worker
that dies mid-stream (`kill -9`) loses the reply within LEASE_HEARTBEAT_SECONDS, not
LEASE_SECONDS. The workers here run on an injected clock; nothing sleeps.

A kill is a BaseException raised from the worker's own write: like a SIGKILL, it runs no
handler of the worker's, so nothing the worker would write after it is written."""

from __future__ import annotations

import pytest

from agentfiles.data import delta_rows, reply_rows
from agentfiles.logic import generation, live
from agentfiles.models.common import now_ms
from agentfiles.models.jobs import GenerationJob
from agentfiles.settings import get_settings


class Killed(BaseException):
    """The worker's process is gone."""


class TickingClock:
    """A clock that moves `step_ms` each time it is read, from `start_ms`."""

    def __init__(self, start_ms: int, step_ms: int) -> None:
        self.now, self.step = start_ms, step_ms

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def _ask(aws, content="tell me everything"):
    thread = aws.new_thread()
    saved = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content})
    assert saved.status == 201, saved.body
    (message,) = aws.drain("generations")
    return thread, saved.body["reply"]["id"], GenerationJob.model_validate_json(message["Body"])


def _killed_at_flush(monkeypatch, job, clock, flushes: int) -> None:
    """Run the worker until its `flushes`-th delta row is written, then kill it."""
    written = {"rows": 0}
    append = delta_rows.append

    def append_then_die(ref, delta, expires_at_s):
        found = append(ref, delta, expires_at_s)
        written["rows"] += 1
        if written["rows"] >= flushes:
            raise Killed
        return found

    monkeypatch.setattr(delta_rows, "append", append_then_die)
    with pytest.raises(Killed):
        generation.run_job(job, 1, 5, clock=clock)
    monkeypatch.setattr(delta_rows, "append", append)


def test_given_a_worker_streaming_for_a_minute_when_it_is_killed_then_its_lease_ends_within_a_heartbeat(
    worker, model, monkeypatch
):
    # Given a long reply, and a worker whose clock moves 500 ms on each read (a minute
    # of streaming by its 40th flush)
    model.configure(word_count=300)
    _thread, _reply_id, job = _ask(worker)
    clock = TickingClock(now_ms(), 500)
    taken_at = clock.now
    # When the worker is killed at its 40th delta
    _killed_at_flush(monkeypatch, job, clock, flushes=40)
    # Then the reply is still streaming, under a lease it renewed as it streamed...
    row = reply_rows.read(job.reply)
    settings = get_settings()
    beat_ms = settings.lease_heartbeat_seconds * 1000
    assert row["status"] == "streaming"
    assert row["leaseUntil"] > taken_at + beat_ms
    # ...that ends a heartbeat after it was last heard from, far sooner than LEASE_SECONDS
    assert clock.now < row["leaseUntil"] <= clock.now + beat_ms
    assert row["leaseUntil"] < taken_at + settings.lease_seconds * 1000 - 60_000


def test_given_a_worker_killed_mid_stream_when_its_heartbeat_has_passed_then_the_next_delivery_takes_over(
    worker, model, monkeypatch
):
    # Given a worker that streamed for 20 s of its clock and died, 30 s ago
    model.configure(word_count=300)
    thread, reply_id, job = _ask(worker)
    beat_ms = get_settings().lease_heartbeat_seconds * 1000
    clock = TickingClock(now_ms() - 50_000 - beat_ms, 250)
    _killed_at_flush(monkeypatch, job, clock, flushes=40)
    assert reply_rows.read(job.reply)["leaseUntil"] < now_ms()
    # When the job is delivered again (the queue hands it out after its visibility timeout)
    outcome = generation.run_job(job, 2, 5)
    # Then the new worker takes the reply over at once and answers it whole, after a reset
    assert outcome.status == "success"
    reply = worker.call_api("GET", f"/threads/{thread}/messages/{reply_id}").body["message"]
    rows = delta_rows.read_all(job.reply)
    assert reply["status"] == "success"
    assert any(r.reset for r in rows) and live.text_of(rows) == reply["content"][0]["text"]
    assert reply["content"][0]["text"] == model.calls[-1]["reply"]


def test_given_a_worker_killed_mid_stream_when_the_reply_is_stopped_then_it_ends_stopped_at_once(
    worker, model, monkeypatch
):
    # Given a worker that streamed and died more than a heartbeat ago
    model.configure(word_count=300)
    thread, reply_id, job = _ask(worker)
    beat_ms = get_settings().lease_heartbeat_seconds * 1000
    clock = TickingClock(now_ms() - 30_000 - beat_ms, 250)
    _killed_at_flush(monkeypatch, job, clock, flushes=10)
    streamed = live.text_of(delta_rows.read_all(job.reply))
    assert streamed
    # When the user stops the reply
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    # Then the stop concludes it there and then: stopped, with what was streamed
    assert stop.status == 202, stop.body
    assert stop.body["message"]["status"] == "stopped"
    reply = worker.call_api("GET", f"/threads/{thread}/messages/{reply_id}").body["message"]
    assert reply["status"] == "stopped" and reply["content"][0]["text"] == streamed
    # And it counts once among the day's replies
    assert worker.call_api("GET", "/usage").body["generation"]["replies"] == 1


def test_given_a_live_worker_when_its_lease_is_renewed_then_a_stop_only_seals_its_stream(worker, model):
    # Given a reply held under a heartbeat lease, renewed a moment ago
    from agentfiles.data.reply_rows import Lease

    thread, reply_id, job = _ask(worker)
    lease = Lease(job.reply, "alive")
    now = now_ms()
    beat = live.Heartbeat.start(lease, lambda: now, now - 10_000)
    assert reply_rows.take_lease(lease, now - 10_000, beat.until_ms)
    beat.keep()
    assert reply_rows.read(job.reply)["leaseUntil"] > now
    # When it is stopped
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    # Then the stop leaves the ending to the worker (sealed, still streaming), which
    # keeps its lease until it meets the seal
    assert stop.status == 202 and stop.body["message"]["status"] == "streaming"
    assert live.stop_requested(job.reply)


def test_given_a_worker_killed_mid_stream_when_its_thread_is_deleted_then_the_reply_counts_once_and_all_goes(
    worker, model, monkeypatch
):
    # Given a worker that streamed and died more than a heartbeat ago
    from agentfiles.data import keys

    model.configure(word_count=300)
    thread, _reply_id, job = _ask(worker)
    beat_ms = get_settings().lease_heartbeat_seconds * 1000
    clock = TickingClock(now_ms() - 30_000 - beat_ms, 250)
    _killed_at_flush(monkeypatch, job, clock, flushes=10)
    # When its thread is deleted and purged
    assert worker.call_api("DELETE", f"/threads/{thread}").status == 202
    worker.run_maintenance()
    # Then the reply was stopped and counted once, and nothing of the thread is left
    assert worker.call_api("GET", "/usage").body["generation"]["replies"] == 1
    left = worker.dynamodb.query(
        TableName=worker.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.thread_pk("alice", thread)}},
    )["Items"]
    assert left == []
