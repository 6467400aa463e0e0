"""A reply's stream never has a gap, a duplicate or a mixed text, whatever the order of
deliveries, lease takeovers, zombie writers, releases, ends and stops.

A hypothesis state machine drives the real stream protocol (`logic.live`) and the
worker's own end of a reply (`logic.chat.finish`) on moto, for one reply at a
time. Each holder writes texts that name it (`h3.2;`), so a text spliced from two
holders shows. After every step the rows in the table are checked, not a model of them:

- the seqs are 1..last, each once, and nothing follows an end row;
- the rows since the last reset come from one holder only;
- once the reply has ended, its row's text is exactly those rows, and `lastSeq` the last.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agentfiles.data import delta_rows, keys, message_rows, reply_rows
from agentfiles.logic import live
from agentfiles.logic.chat import finish
from agentfiles.models.common import now_ms
from agentfiles.models.messages import ENDED_STATUSES, MessageRef
from harness.aws import LocalAws, local_aws

LEASE_MS = 60_000


@dataclass
class Holder:
    """One delivery of the reply's job that took the lease."""

    number: int
    lease: reply_rows.Lease
    writer: live.StreamWriter
    flushes: int = 0
    alive: bool = True


class StreamProtocol(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._context = local_aws()
        self.aws: LocalAws = self._context.__enter__()
        self.holders: list[Holder] = []
        self.deliveries = 0
        self.ref: MessageRef

    def teardown(self) -> None:
        self._context.__exit__(None, None, None)

    @initialize()
    def a_pending_reply(self) -> None:
        thread = self.aws.new_thread()
        saved = self.aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "hi"})
        self.ref = MessageRef("alice", thread, saved.body["reply"]["id"])
        self.aws.drain("generations")

    def _live(self) -> list[Holder]:
        return [h for h in self.holders if h.alive]

    # ---- steps -----------------------------------------------------------------

    @rule()
    def deliver(self) -> None:
        # A delivery of the job (first, duplicate, or after a lease ran out) takes the lease
        # if it can, and opens the stream as the worker does.
        self.deliveries += 1
        lease = reply_rows.Lease(self.ref, uuid.uuid4().hex)
        now = now_ms()
        taken = reply_rows.take_lease(lease, now, now + LEASE_MS)
        if taken is None:
            event("delivery: lease refused")
            return
        try:
            opened = live.open_stream(self.ref, taken.generation)
        except live.LeaseLost:
            event("delivery: fenced off while opening")
            return
        if isinstance(opened, live.Sealed):
            live.conclude(lease, taken.record, opened.rows)
            event("delivery: concluded a sealed stream")
            return
        event(f"delivery: generation {min(taken.generation, 3)}{'+' if taken.generation >= 3 else ''}")
        self.holders.append(Holder(self.deliveries, lease, opened))

    @precondition(lambda self: self.holders)
    @rule()
    def the_lease_runs_out(self) -> None:
        # The current holder stalls past its lease; it does not know, and may write again.
        if not self._has_lease():
            return
        self.aws.dynamodb.update_item(
            TableName=self.aws.resources.table_name,
            Key=keys.message_key(self.ref.owner, self.ref.thread_id, self.ref.message_id).dynamo,
            UpdateExpression="SET leaseUntil = :past",
            ExpressionAttributeValues={":past": {"N": str(now_ms() - 1)}},
        )
        event("a lease ran out")

    @precondition(lambda self: any(h.alive for h in self.holders))
    @rule(which=st.integers(0, 100))
    def flush(self, which: int) -> None:
        holder = self._pick(which)
        holder.flushes += 1
        try:
            holder.writer.flush(f"h{holder.number}.{holder.flushes};")
            event("flush: written")
        except live.LeaseLost:
            holder.alive = False
            event("flush: fenced off")
        except live.Stopped as stop:
            holder.alive = False
            self._end_with(holder, stop.end)
            event("flush: met a stop")

    @precondition(lambda self: any(h.alive for h in self.holders))
    @rule(which=st.integers(0, 100), now=st.integers(0, 2))
    def end(self, which: int, now: int) -> None:
        # (A third of the draws: a reply that ends at once has little to show.)
        if now:
            return
        holder = self._pick(which)
        holder.alive = False
        try:
            end = holder.writer.end("success", f"h{holder.number}.end;", "stop")
        except live.LeaseLost:
            event("end: fenced off")
            return
        self._end_with(holder, end)

    @precondition(lambda self: any(h.alive for h in self.holders))
    @rule(which=st.integers(0, 100))
    def release(self, which: int) -> None:
        # A retryable model error: the holder gives the reply back and writes no more.
        holder = self._pick(which)
        holder.alive = False
        released = reply_rows.release_lease(holder.lease, now_ms() + LEASE_MS, now_ms())
        event(f"release: {'done' if released else 'lease already lost'}")

    @rule(now=st.integers(0, 3))
    def stop(self, now: int) -> None:
        if now:
            return
        outcome = live.stop_reply(self.ref.owner, self.ref.thread_id, self.ref.message_id)
        event(f"stop: {'accepted' if outcome.accepted else 'already ended'}")

    def _end_with(self, holder: Holder, end: object) -> None:
        try:
            finish(holder.lease, holder.writer, end, "fake-chat", None, "stop")  # type: ignore[arg-type]
            event("end: the reply ended")
        except live.LeaseLost:
            event("end: lease lost before the reply row")

    def _pick(self, which: int) -> Holder:
        alive = self._live()
        return alive[which % len(alive)]

    def _has_lease(self) -> bool:
        row = reply_rows.read(self.ref)
        return bool(row and "leaseUntil" in row)

    # ---- what must always hold -------------------------------------------------

    @invariant()
    def the_stream_adds_up(self) -> None:
        rows = delta_rows.read_all(self.ref)
        # No gap and no duplicate: the seqs are exactly 1..last
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), [r.seq for r in rows]
        # Nothing after an end row
        ends = [i for i, r in enumerate(rows) if r.end]
        assert ends in ([], [len(rows) - 1]), [(r.seq, r.end) for r in rows]
        # The text since the last reset is one holder's, never a splice of two
        start = max((i for i, r in enumerate(rows) if r.reset), default=0)
        writers = {r.text.split(".")[0] for r in rows[start:] if r.text}
        assert len(writers) <= 1, writers
        record = message_rows.get_message(self.ref.owner, self.ref.thread_id, self.ref.message_id)
        assert record is not None
        if record.status in ENDED_STATUSES:
            # An ended reply holds exactly what its stream holds, up to its end row
            assert rows and rows[-1].end and record.last_seq == rows[-1].seq
            assert "".join(p.text for p in record.content) == live.text_of(rows)  # type: ignore[union-attr]
            assert record.status == rows[-1].end or (record.status, rows[-1].end) == ("failed", "failed")


StreamProtocol.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_a_reply_stream_never_has_a_gap_a_duplicate_or_a_mixed_text = StreamProtocol.TestCase
