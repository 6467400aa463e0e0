"""Live replies on moto: delta rows, the catch-up route, stop, long replies, and how a
reply's stream goes with its message and its thread."""

from __future__ import annotations

import threading
import time

from agentfiles.data import delta_rows, keys
from agentfiles.data.table import from_item
from agentfiles.logic import live
from agentfiles.models.messages import MessageRef
from agentfiles.settings import get_settings
from harness.aws import while_writing
from harness.calls import count_calls

MIB = 1024 * 1024


def _ask(aws, content, sub="alice"):
    thread = aws.new_thread(sub=sub)
    reply = aws.call_api("POST", f"/threads/{thread}/messages", sub=sub, json_body={"content": content})
    assert reply.status == 201, reply.body
    return thread, reply.body["reply"]["id"]


def _message(aws, thread, message_id, sub="alice"):
    return aws.call_api("GET", f"/threads/{thread}/messages/{message_id}", sub=sub).body["message"]


def _text(message) -> str:
    return "".join(p.get("text", "") for p in message["content"])


def _rows(aws, thread, reply_id, owner="alice") -> list[dict]:
    """The stream's rows as stored."""
    items = aws.dynamodb.query(
        TableName=aws.resources.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.thread_pk(owner, thread)},
            ":prefix": {"S": keys.stream_prefix(reply_id)},
        },
        ConsistentRead=True,
    )["Items"]
    return [from_item(item) for item in items]


def _stream(aws, thread, reply_id, after=0, sub="alice"):
    return aws.call_api(
        "GET", f"/threads/{thread}/messages/{reply_id}/stream", sub=sub, query={"after": str(after)}
    )


def _in_background(aws):
    done = threading.Event()

    def run() -> None:
        try:
            aws.deliver("generations")
        finally:
            done.set()

    runner = threading.Thread(target=run)
    runner.start()
    return runner, done


def _wait_for_deltas(aws, thread, reply_id, at_least: int) -> None:
    deadline = time.monotonic() + 30
    while len(while_writing(lambda: _rows(aws, thread, reply_id))) < at_least:
        assert time.monotonic() < deadline, "the worker never streamed"
        time.sleep(0.01)


def test_a_reply_streams_as_numbered_deltas_that_add_up_to_its_final_text(worker, model):
    # Given a 300-word reply flushed on every chunk
    model.configure(word_count=300)
    thread, reply_id = _ask(worker, "tell me everything")
    # When the worker answers
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the stream is seq 1..lastSeq without a gap, sealed by its last row
    rows = sorted(_rows(worker, thread, reply_id), key=lambda r: r["seq"])
    reply = _message(worker, thread, reply_id)
    assert [r["seq"] for r in rows] == list(range(1, reply["lastSeq"] + 1))
    assert rows[-1]["end"] == "success" and not any("end" in r for r in rows[:-1])
    # And the deltas, concatenated, are the final text
    assert "".join(r["text"] for r in rows) == _text(reply) == model.calls[0]["reply"]
    # And every row expires some time after it was written
    now_s = time.time()
    retention = get_settings().stream_retention_seconds
    assert all(now_s < r["expiresAt"] <= now_s + retention + 5 for r in rows)


def test_deltas_never_show_up_in_message_pages_or_in_the_history_sent_to_the_model(worker, model):
    # Given a streamed reply, then a second question in the same thread
    thread, _ = _ask(worker, "first")
    worker.deliver("generations")
    worker.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "second"})
    worker.deliver("generations")
    # When the thread's messages are listed
    items = worker.call_api("GET", f"/threads/{thread}/messages").body["items"]
    # Then there are exactly the four messages, and the model saw the three before its reply
    assert [m["role"] for m in items] == ["assistant", "user", "assistant", "user"]
    assert [m["role"] for m in model.calls[-1]["sent"]] == ["user", "assistant", "user"]


def test_catching_up_after_n_returns_exactly_the_missing_deltas_and_the_ended_status(worker, model):
    # Given a streamed reply
    model.configure(word_count=40)
    thread, reply_id = _ask(worker, "count")
    worker.deliver("generations")
    last = _message(worker, thread, reply_id)["lastSeq"]
    # When a client that has seq 1..5 asks for what it missed
    with count_calls() as calls:
        answer = _stream(worker, thread, reply_id, after=5)
    # Then it gets 6..lastSeq, and the status from the reply row the page's end row sent it to
    assert answer.status == 200
    assert [d["seq"] for d in answer.body["deltas"]] == list(range(6, last + 1))
    assert answer.body["status"] == "success" and answer.body["lastSeq"] == last
    assert calls.names() == ["Query", "BatchGetItem"]
    # And the whole stream from 0 pieces together the reply
    whole = _stream(worker, thread, reply_id).body["deltas"]
    assert "".join(d["text"] for d in whole) == _text(_message(worker, thread, reply_id))


def test_a_sealed_stream_says_ended_only_once_the_reply_row_holds_the_text(worker, model):
    # Given a worker that streamed a little, then sealed its stream, but has not yet
    # written the reply row (the window between its last two writes)
    from agentfiles.data import reply_rows
    from agentfiles.models.common import now_ms

    thread, reply_id = _ask(worker, "hello")
    ref = MessageRef("alice", thread, reply_id)
    lease = reply_rows.Lease(ref, "writer")
    taken = reply_rows.take_lease(lease, now_ms(), now_ms() + 60_000)
    writer = live.open_stream(ref, taken.generation)
    with count_calls() as calls:
        writer.flush("hello ")
        streaming = _stream(worker, thread, reply_id)
    end = writer.end("success", "world")
    # When a client catches up from 0 while a read of the message still finds it empty
    sealed = _stream(worker, thread, reply_id)
    # Then it is told the reply is still streaming, with every delta, the end row's included
    assert streaming.body["status"] == "streaming" and calls.names().count("GetItem") == 0
    assert sealed.body["status"] == "streaming" and sealed.body["lastSeq"] == end.seq
    assert "".join(d["text"] for d in sealed.body["deltas"]) == "hello world"
    assert _message(worker, thread, reply_id)["content"] == []
    # And once the reply row is written, the next catch-up says it ended, and a read agrees
    live.conclude(lease, taken.record, delta_rows.read_all(ref))
    ended = _stream(worker, thread, reply_id, after=end.seq)
    assert ended.body == {"messageId": reply_id, "status": "success", "deltas": [], "lastSeq": end.seq}
    assert _text(_message(worker, thread, reply_id)) == "hello world"


def test_catching_up_on_a_reply_not_started_yet_says_pending(worker, model):
    thread, reply_id = _ask(worker, "hello")
    answer = _stream(worker, thread, reply_id)
    assert answer.status == 200
    assert answer.body == {"messageId": reply_id, "status": "pending", "deltas": [], "lastSeq": 0}


def test_another_owners_stream_is_not_found(worker, model):
    thread, reply_id = _ask(worker, "secret")
    worker.deliver("generations")
    answer = _stream(worker, thread, reply_id, sub="mallory")
    assert answer.status == 404 and answer.body["error"]["code"] == "message_not_found"
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop", sub="mallory")
    assert stop.status == 404 and stop.body["error"]["code"] == "message_not_found"


def test_a_reply_stopped_before_its_worker_starts_ends_stopped_and_never_calls_the_model(worker, model):
    # Given a pending reply
    thread, reply_id = _ask(worker, "never mind")
    # When it is stopped, then its job is delivered
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    assert stop.status == 202
    assert stop.body["message"]["status"] == "stopped"
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply stays stopped, empty, and the model was never called
    reply = _message(worker, thread, reply_id)
    assert reply["status"] == "stopped" and reply["content"] == []
    assert model.calls == []
    # And stopping it again changes nothing
    again = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    assert again.status == 200 and again.body["message"] == reply


def test_stopping_a_streaming_reply_keeps_what_was_streamed_and_closes_the_model_stream(worker, model):
    # Given a slow 2000-word reply being streamed
    model.configure(chunk_delay_s=0.002, word_count=20_000)
    thread, reply_id = _ask(worker, "go on and on")
    runner, _ = _in_background(worker)
    _wait_for_deltas(worker, thread, reply_id, at_least=3)
    # When the user stops it
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    assert stop.status == 202 and stop.body["message"]["status"] == "streaming"
    runner.join(30)
    # Then the reply ends stopped, with exactly the text its stream holds
    reply = _message(worker, thread, reply_id)
    assert reply["status"] == "stopped"
    rows = sorted(_rows(worker, thread, reply_id), key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == list(range(1, reply["lastSeq"] + 1))
    assert rows[-1]["end"] == "stopped"
    assert "".join(r["text"] for r in rows) == _text(reply) != ""
    # And the worker hung up on the model long before the answer was done
    call = model.calls[0]
    assert call["chunks_sent"] < 10_000
    assert len(_text(reply).split()) < 10_000


def test_stopping_an_ended_reply_changes_nothing_and_a_user_message_cannot_be_stopped(worker, model):
    thread = worker.new_thread()
    saved = worker.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "hi"}).body
    worker.deliver("generations")
    reply = _message(worker, thread, saved["reply"]["id"])
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply['id']}/stop")
    assert stop.status == 200 and stop.body["message"] == reply
    refused = worker.call_api("POST", f"/threads/{thread}/messages/{saved['message']['id']}/stop")
    assert refused.status == 409 and refused.body["error"]["code"] == "not_a_reply"


def test_the_completion_limit_is_sent_and_a_reply_cut_by_it_ends_length(worker, model, monkeypatch):
    monkeypatch.setenv("MAX_REPLY_TOKENS", "25")
    get_settings.cache_clear()
    model.configure(word_count=100)
    thread, reply_id = _ask(worker, "long")
    worker.deliver("generations")
    reply = _message(worker, thread, reply_id)
    assert reply["status"] == "success" and reply["finishReason"] == "length"
    assert len(_text(reply).split()) == 25


def test_a_one_mib_answer_ends_length_within_the_item_limit_and_never_fails(worker, model, monkeypatch):
    # Given a model that would answer with over 1 MiB of text, and no completion limit to stop it
    monkeypatch.setenv("MAX_REPLY_TOKENS", "1000000")
    monkeypatch.setenv("STREAM_FLUSH_MS", "100")
    get_settings.cache_clear()
    thread, reply_id = _ask(worker, "everything [[words:180000]]")
    # When the worker streams it
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply succeeds, cut at what its row can hold, and says why
    reply = _message(worker, thread, reply_id)
    assert reply["status"] == "success" and reply["finishReason"] == "length"
    text = _text(reply)
    assert len(text) == live.MAX_REPLY_TEXT_CHARS and len(text.encode()) <= live.MAX_REPLY_TEXT_BYTES
    assert model.calls[0]["reply"].startswith(text) and len(model.calls[0]["reply"]) > MIB
    # And its stream holds the same text, in rows far below the item limit
    rows = sorted(_rows(worker, thread, reply_id), key=lambda r: r["seq"])
    assert "".join(r["text"] for r in rows) == text
    assert max(len(r["text"].encode()) for r in rows) <= 4 * live.DELTA_MAX_CHARS
    # And the worker stopped reading once the reply was full
    assert model.calls[0]["chunks_sent"] < 180_000


def test_deleting_a_reply_removes_its_stream(worker, model):
    thread, reply_id = _ask(worker, "hello")
    worker.deliver("generations")
    assert _rows(worker, thread, reply_id)
    assert worker.call_api("DELETE", f"/threads/{thread}/messages/{reply_id}").status == 204
    assert _rows(worker, thread, reply_id) == []


def test_a_reply_deleted_mid_stream_leaves_only_the_fence_that_stopped_its_writer(worker, model):
    model.configure(chunk_delay_s=0.002, word_count=20_000)
    thread, reply_id = _ask(worker, "hello")
    runner, _ = _in_background(worker)
    _wait_for_deltas(worker, thread, reply_id, at_least=3)
    assert worker.call_api("DELETE", f"/threads/{thread}/messages/{reply_id}").status == 204
    runner.join(30)
    # Then the writer stopped at the fence: nothing of the text is left, only the fence row
    rows = _rows(worker, thread, reply_id)
    assert len(rows) == 1 and rows[0]["end"] == "failed" and rows[0]["text"] == ""
    assert model.calls[0]["chunks_sent"] < 10_000


def test_purging_a_thread_removes_its_streams_and_releases_every_reference(worker, model):
    # Given a thread whose messages hold a file, with a streamed reply
    file = worker.small_file(b"some notes", "text/plain")
    thread = worker.new_thread()
    body = {"content": [{"type": "text", "text": "read"}, {"type": "file", "fileId": file["id"]}]}
    reply_id = worker.call_api("POST", f"/threads/{thread}/messages", json_body=body).body["reply"]["id"]
    worker.deliver("generations")
    assert _rows(worker, thread, reply_id) and worker.refcount("alice", file["id"]) == 1
    # When the thread is deleted and purged
    assert worker.call_api("DELETE", f"/threads/{thread}").status == 202
    worker.run_maintenance()
    # Then its partition is empty and the file is released once
    left = worker.dynamodb.query(
        TableName=worker.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.thread_pk("alice", thread)}},
    )["Items"]
    assert left == []
    assert worker.refcount("alice", file["id"]) == 0


def test_a_takeover_supersedes_what_the_lost_worker_streamed(worker, model):
    # Given a reply whose first worker streamed a little and then vanished (its lease ran out)
    from agentfiles.data import reply_rows
    from agentfiles.models.common import now_ms

    thread, reply_id = _ask(worker, "hello")
    ref = MessageRef("alice", thread, reply_id)
    lost = reply_rows.Lease(ref, "lost")
    taken = reply_rows.take_lease(lost, now_ms() - 10_000, now_ms() - 1)
    zombie = live.open_stream(ref, taken.generation)
    zombie.flush("half a thought from the first worker, ")
    # When the job is delivered again
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply is the new worker's answer alone, after a reset row
    reply = _message(worker, thread, reply_id)
    rows = delta_rows.read_all(ref)
    assert [r.seq for r in rows] == list(range(1, reply["lastSeq"] + 1))
    assert rows[1].reset and live.text_of(rows) == _text(reply) == model.calls[0]["reply"]
    # And the vanished worker can no longer append
    try:
        zombie.flush("the rest")
        raise AssertionError("a fenced-off writer appended")
    except live.LeaseLost:
        pass
    assert len(delta_rows.read_all(ref)) == len(rows)


# ---- deleting a thread stops its replies ------------------------------------------------


def _usage_replies(aws) -> int:
    return aws.call_api("GET", "/usage").body["generation"]["replies"]


def test_deleting_a_thread_stops_its_streaming_reply_at_the_next_flush_and_counts_it_once(
    worker, model, monkeypatch
):
    # Given a slow, long reply being streamed, one row per 20 ms flush (a writer that wrote
    # a row per 2 ms chunk could outrun the stop's claim on a loaded machine, which no
    # deployed flush interval allows)
    monkeypatch.setenv("STREAM_FLUSH_MS", "20")
    get_settings.cache_clear()
    model.configure(chunk_delay_s=0.002, word_count=20_000)
    thread, reply_id = _ask(worker, "go on and on")
    runner, _ = _in_background(worker)
    _wait_for_deltas(worker, thread, reply_id, at_least=3)
    # When its thread is deleted
    assert worker.call_api("DELETE", f"/threads/{thread}").status == 202
    at_delete = while_writing(lambda: _rows(worker, thread, reply_id))
    runner.join(30)
    # Then the stream was sealed before the answer, and the worker wrote nothing after it:
    # it stopped at its next flush, and hung up on the model
    assert not runner.is_alive()
    rows = sorted(_rows(worker, thread, reply_id), key=lambda r: r["seq"])
    assert rows == sorted(at_delete, key=lambda r: r["seq"])
    assert rows[-1]["end"] == "stopped"
    assert model.calls[0]["chunks_sent"] < 10_000
    # And the thread's reply is not found anywhere, its stream included
    stream = _stream(worker, thread, reply_id)
    assert stream.status == 404 and stream.body["error"]["code"] == "message_not_found"
    assert _stream(worker, thread, reply_id, after=rows[-1]["seq"]).status == 404
    stop = worker.call_api("POST", f"/threads/{thread}/messages/{reply_id}/stop")
    assert stop.status == 404
    # And the reply counts once on the owner's usage, before and after the purge
    assert _usage_replies(worker) == 1
    worker.run_maintenance()
    left = worker.dynamodb.query(
        TableName=worker.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.thread_pk("alice", thread)}},
    )["Items"]
    assert left == []
    assert _usage_replies(worker) == 1


def test_deleting_a_thread_stops_a_reply_not_started_so_its_job_never_calls_the_model(worker, model):
    # Given a pending reply
    thread, reply_id = _ask(worker, "never mind")
    # When the thread is deleted, then the reply's job is delivered
    assert worker.call_api("DELETE", f"/threads/{thread}").status == 202
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the model was never called, nothing was streamed, and the purge leaves nothing
    assert model.calls == []
    assert [r.get("end") for r in _rows(worker, thread, reply_id)] == ["stopped"]
    worker.run_maintenance()
    assert _rows(worker, thread, reply_id) == []
