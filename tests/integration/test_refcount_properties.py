"""Reference counts are never wrong, whatever the order of uploads, saves and deletes.

A hypothesis state machine drives the real API and worker code on moto. After every
step the counts stored on the files are compared with the messages that actually
exist in the table (not with a model of them).
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agentfiles.data.table import from_item
from tests.support.aws import LocalAws, local_aws

picks = st.lists(st.integers(min_value=0, max_value=1000), max_size=4)


class ReferenceCounting(RuleBasedStateMachine):
    """Steps pick files, threads and messages by index into what exists so far, so
    most steps act on real state instead of being filtered away."""

    def __init__(self) -> None:
        super().__init__()
        self._context = local_aws()
        self.aws: LocalAws = self._context.__enter__()
        self.files: list[str] = []
        self.pending: list[str] = []
        self.threads: list[str] = []
        self.messages: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.uploads = 0
        self.saved = 0

    def teardown(self) -> None:
        event(f"messages saved: {min(self.saved, 5)}{'+' if self.saved >= 5 else ''}")
        self._context.__exit__(None, None, None)

    # ---- steps -----------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.threads.append(self.aws.new_thread())
        for _ in range(3):
            self.upload(distinct=True)

    @rule(distinct=st.booleans())
    def upload(self, distinct: bool) -> None:
        # The same content twice is a dedup hit: the same file id comes back.
        self.uploads += 1
        content = f"content {self.uploads if distinct else 0}".encode()
        file_id = self.aws.small_file(content, "text/plain")["id"]
        if file_id not in self.files:
            self.files.append(file_id)

    @rule()
    def register_pending(self) -> None:
        reply = self.aws.call_api(
            "POST", "/files/uploads", json_body={"filename": "p.txt", "mediaType": "text/plain", "size": 5}
        )
        self.pending.append(reply.body["file"]["id"])

    @rule()
    def new_thread(self) -> None:
        self.threads.append(self.aws.new_thread())

    @precondition(lambda self: self.threads)
    @rule(thread=st.integers(0, 100), chosen=picks, as_parts=st.booleans(), with_pending=st.booleans())
    def save(self, thread: int, chosen: list[int], as_parts: bool, with_pending: bool) -> None:
        thread_id = self.threads[thread % len(self.threads)]
        file_ids = [self.files[i % len(self.files)] for i in chosen] if self.files else []
        if with_pending and self.pending and chosen:
            file_ids.append(self.pending[chosen[0] % len(self.pending)])
        body: dict = {"content": "hi", "generate": False}
        if as_parts and file_ids:
            body["content"] = [{"type": "file", "fileId": f} for f in file_ids]
        else:
            body["fileIds"] = file_ids
        reply = self.aws.call_api("POST", f"/threads/{thread_id}/messages", json_body=body)
        assert reply.status in (201, 404, 409), reply.body
        event(f"save: {reply.status}")
        if reply.status == 201:
            self.saved += 1
            self.messages.append((thread_id, reply.body["message"]["id"]))

    @precondition(lambda self: self.messages)
    @rule(which=st.integers(0, 1000))
    def delete_message(self, which: int) -> None:
        thread_id, message_id = self.messages.pop(which % len(self.messages))
        reply = self.aws.call_api("DELETE", f"/threads/{thread_id}/messages/{message_id}")
        assert reply.status in (204, 404)
        event(f"delete message: {reply.status}")
        self.deleted.append((thread_id, message_id))

    @precondition(lambda self: self.deleted)
    @rule(which=st.integers(0, 1000))
    def delete_message_again(self, which: int) -> None:
        thread_id, message_id = self.deleted[which % len(self.deleted)]
        assert self.aws.call_api("DELETE", f"/threads/{thread_id}/messages/{message_id}").status == 404

    @precondition(lambda self: self.threads)
    @rule(which=st.integers(0, 1000))
    def delete_thread(self, which: int) -> None:
        thread_id = self.threads.pop(which % len(self.threads))
        assert self.aws.call_api("DELETE", f"/threads/{thread_id}").status == 202
        self.aws.run_maintenance()
        self.messages = [m for m in self.messages if m[0] != thread_id]

    @precondition(lambda self: self.files)
    @rule(which=st.integers(0, 1000))
    def delete_file(self, which: int) -> None:
        file_id = self.files[which % len(self.files)]
        status = self.aws.call_api("DELETE", f"/files/{file_id}").status
        assert status in (204, 409)
        event(f"delete file: {status}")
        if status == 204:
            self.files.remove(file_id)

    # ---- what must always hold -------------------------------------------------

    def _table(self) -> list[dict]:
        items, kwargs = [], {"TableName": self.aws.resources.table_name}
        while True:
            page = self.aws.dynamodb.scan(**kwargs)
            items += [from_item(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @invariant()
    def counts_match_the_messages_that_exist(self) -> None:
        rows = self._table()
        held = Counter(f for r in rows if r["sk"].startswith("MSG#") for f in r.get("fileIds", []))
        for row in rows:
            if row["sk"].startswith("FILE#"):
                assert row["refcount"] >= 0
                assert row["refcount"] == held[row["id"]], (row["id"], row["refcount"], held[row["id"]])
                # Every unreferenced file is a vacuum candidate (a referenced one may
                # still carry a marker from a decrement; the vacuum clears it).
                if row["refcount"] == 0:
                    assert "gcShard" in row
        files = {r["id"] for r in rows if r["sk"].startswith("FILE#")}
        assert set(held) <= files, "a message references a file that no longer exists"
        if any(n > 1 for n in held.values()):
            event("a file held by several messages")


ReferenceCounting.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_reference_counts_always_equal_the_live_messages_that_hold_them = ReferenceCounting.TestCase
