"""What one reply may cost, and how it is counted: the attachment budget of a model call,
text files read with a byte cap, the size of a generated picture, the completion limit,
the storage a picture needs, and the owner's usage of the day, counted once per reply."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

from agentfiles.data import clients, keys, table
from agentfiles.ids import new_ulid
from agentfiles.logic.inline_parts import content_bytes
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.files import FileRecord
from agentfiles.models.messages import TextPart
from agentfiles.settings import get_settings
from agentfiles_local.events import LambdaContext
from functions.generate.handler import lambda_handler
from harness import samples

MIB = 1024 * 1024


def _ask(aws, content, thread=None, **extra):
    thread = thread or aws.new_thread()
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content, **extra})
    assert reply.status == 201, reply.body
    return thread, reply.body["reply"]["id"] if reply.body["reply"] else None


def _reply(aws, thread, reply_id):
    return aws.call_api("GET", f"/threads/{thread}/messages/{reply_id}").body["message"]


def _setting(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()


class BytesRead:
    """Every S3 GetObject the functions make, and the bytes each returned."""

    def __init__(self) -> None:
        self.gets: list[dict] = []

    def __call__(self, params, **_):
        self.gets.append({"Range": params.get("Range"), "Key": params["Key"]})

    def body(self, parsed, **_):
        self.gets[-1]["bytes"] = int(parsed.get("ContentLength", 0))

    @property
    def total(self) -> int:
        return sum(get.get("bytes", 0) for get in self.gets)


@contextmanager
def bytes_read() -> Iterator[BytesRead]:
    s3 = clients.s3()
    log = BytesRead()
    s3.meta.events.register("before-parameter-build.s3.GetObject", log)
    s3.meta.events.register("after-call.s3.GetObject", log.body)
    try:
        yield log
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", log)
        s3.meta.events.unregister("after-call.s3.GetObject", log.body)


def _stored_pdf(aws, size: int, filename: str) -> str:
    """A ready PDF file of `size` bytes, put straight into S3 and the table (as the
    upload trigger would leave it), without going through the API."""
    file_id = new_ulid()
    key = keys.object_key("alice", file_id)
    head = samples.pdf(pages=1)
    aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=key, Body=head + b"\0" * (size - len(head)))
    now = now_ms()
    record = FileRecord(
        id=file_id,
        owner="alice",
        filename=filename,
        media_type="application/pdf",
        size=size,
        status="ready",
        created_at=iso_from_ms(now),
        updated_at=iso_from_ms(now),
        last_touched_at=now,
        s3_key=key,
    )
    table.put(table.row_of(record, keys.file_key("alice", file_id)))
    return file_id


# ---- the attachment budget -----------------------------------------------------------


def test_with_two_100_mib_pdfs_in_history_the_worker_reads_no_more_than_the_budget(worker, model):
    # Given a thread whose history holds two 100 MiB PDFs and a small one, at the
    # default budget (16 MiB), and a new question without attachments
    thread = worker.new_thread()
    small = worker.small_file(samples.pdf(pages=2), "application/pdf", filename="small.pdf")
    for name in ("huge-1.pdf", "huge-2.pdf"):
        file_id = _stored_pdf(worker, 100 * MIB, name)
        _ask(
            worker,
            [{"type": "text", "text": name}, {"type": "file", "fileId": file_id}],
            thread,
            generate=False,
        )
    _ask(worker, [{"type": "file", "fileId": small["id"]}], thread, generate=False)
    thread, reply_id = _ask(worker, "what have I sent you?", thread)
    # When the reply is made
    with bytes_read() as read:
        assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then it succeeds, having read the small PDF only (a scan: its few bytes of stored
    # text say so, then its pages), within the budget
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "success"
    assert read.total <= get_settings().attachment_budget_bytes
    assert read.total == small["size"] + worker.file_row("alice", small["id"])["derived"]["text"]["size"]
    # And the model was told which attachments were left out
    sent = model.calls[0]["sent"]
    texts = [
        p["text"] for m in sent if isinstance(m["content"], list) for p in m["content"] if p["type"] == "text"
    ]
    assert "[file 'huge-1.pdf' omitted: over this reply's attachment budget]" in texts
    assert "[file 'huge-2.pdf' omitted: over this reply's attachment budget]" in texts
    assert [s["filename"] for s in model.calls[0]["saw"] if s["kind"] == "file"] == ["small.pdf"]


def test_a_message_whose_own_attachments_exceed_the_budget_fails_at_once_without_reading_them(
    worker, model, monkeypatch
):
    # Given a budget of 1000 bytes and a question with a PDF over it
    _setting(monkeypatch, "ATTACHMENT_BUDGET_BYTES", "1000")
    pdf = worker.small_file(samples.pdf(pages=3), "application/pdf")
    assert pdf["size"] > 1000
    thread, reply_id = _ask(
        worker, [{"type": "text", "text": "read this"}, {"type": "file", "fileId": pdf["id"]}]
    )
    # When the reply is made
    with bytes_read() as read:
        result = worker.deliver("generations")
    # Then it fails with attachments_too_large, without a retry, a model call or a read
    assert result == {"batchItemFailures": []}
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "attachments_too_large"
    assert read.gets == [] and model.calls == []
    assert worker.deliver("generations") is None


def test_attachments_exactly_at_the_budget_are_all_sent(worker, model, monkeypatch):
    # Given a question whose two PDFs come to exactly the budget
    first = worker.small_file(samples.pdf(pages=1), "application/pdf", filename="a.pdf")
    second = worker.small_file(samples.pdf(pages=2), "application/pdf", filename="b.pdf")
    _setting(monkeypatch, "ATTACHMENT_BUDGET_BYTES", str(first["size"] + second["size"]))
    parts = [{"type": "file", "fileId": first["id"]}, {"type": "file", "fileId": second["id"]}]
    thread, reply_id = _ask(worker, parts)
    # When the reply is made / Then both were sent
    worker.deliver("generations")
    assert _reply(worker, thread, reply_id)["status"] == "success"
    assert [s["filename"] for s in model.calls[0]["saw"]] == ["a.pdf", "b.pdf"]


def test_the_newest_history_attachments_are_kept_and_older_ones_left_out(worker, model, monkeypatch):
    # Given three PDFs of the same size in three older messages, and room for two
    pdfs = [
        worker.small_file(samples.pdf(pages=2) + f"\n%{n}".encode(), "application/pdf", filename=f"{n}.pdf")
        for n in ("old", "mid", "new")
    ]
    assert len({pdf["id"] for pdf in pdfs}) == 3 and len({pdf["size"] for pdf in pdfs}) == 1
    _setting(monkeypatch, "ATTACHMENT_BUDGET_BYTES", str(2 * pdfs[-1]["size"]))
    thread = worker.new_thread()
    for pdf in pdfs:
        _ask(worker, [{"type": "file", "fileId": pdf["id"]}], thread, generate=False)
    _ask(worker, "and now?", thread)
    # When the reply is made
    worker.deliver("generations")
    # Then the two newest went to the model, and the oldest was named as left out
    assert [s["filename"] for s in model.calls[0]["saw"]] == ["mid.pdf", "new.pdf"]
    first_user = model.calls[0]["sent"][0]["content"]
    assert first_user == [
        {"type": "text", "text": "[file 'old.pdf' omitted: over this reply's attachment budget]"}
    ]


def test_a_text_file_is_read_with_one_ranged_get_up_to_its_cap(worker, model, monkeypatch):
    # Given a 3000-byte text file and a cap of 1000 bytes per text attachment
    _setting(monkeypatch, "TEXT_ATTACHMENT_MAX_BYTES", "1000")
    text = ("0123456789" * 300).encode()
    notes = worker.upload(text, "text/plain", filename="notes.txt")
    thread, reply_id = _ask(worker, [{"type": "file", "fileId": notes["id"]}])
    # When the reply is made
    with bytes_read() as read:
        worker.deliver("generations")
    # Then the file was read once, its first 1000 bytes only, and the model told it was cut
    assert read.gets == [{"Range": "bytes=0-999", "Key": f"files/alice/{notes['id']}", "bytes": 1000}]
    sent = model.calls[0]["sent"][-1]["content"][0]["text"]
    assert sent.endswith("[... truncated: the first 1000 of 3000 bytes]")
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_character_cut_by_the_cap_is_dropped_not_garbled(worker, model, monkeypatch):
    # Given a text of two-byte characters and an odd cap
    _setting(monkeypatch, "TEXT_ATTACHMENT_MAX_BYTES", "5")
    notes = worker.upload("ééééé".encode(), "text/plain", filename="e.txt")
    _ask(worker, [{"type": "file", "fileId": notes["id"]}])
    worker.deliver("generations")
    # Then the model gets the whole characters that fit, and no replacement character
    sent = model.calls[0]["sent"][-1]["content"][0]["text"]
    assert "éé\n[... truncated: the first 5 of 10 bytes]" in sent and "\ufffd" not in sent


def test_a_long_answer_ends_length_at_the_completion_limit_and_succeeds(worker, model, monkeypatch):
    # Given a completion limit of 5 and a model that would say 50 words
    _setting(monkeypatch, "MAX_REPLY_TOKENS", "5")
    model.configure(word_count=50)
    thread, reply_id = _ask(worker, "tell me everything")
    # When the reply is made
    worker.deliver("generations")
    # Then it ends `length`, a success with what fitted
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "success" and reply["finishReason"] == "length"
    assert reply["usage"]["completionTokens"] == 5


# ---- pictures --------------------------------------------------------------------------


def _draw(aws, thread=None):
    thread = thread or aws.new_thread()
    reply = aws.call_api(
        "POST", f"/threads/{thread}/images", json_body={"prompt": "a fox", "size": "256x256"}
    )
    assert reply.status == 202, reply.body
    return thread, reply.body["reply"]["id"]


def test_a_picture_over_the_image_cap_fails_the_reply_and_stores_nothing(worker, model, monkeypatch):
    # Given a cap of 100 bytes on generated images
    _setting(monkeypatch, "IMAGE_MAX_BYTES", "100")
    thread, reply_id = _draw(worker)
    # When the model draws a bigger picture
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply fails image_too_large, and no file was stored
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "image_too_large"
    assert worker.call_api("GET", "/files").body["items"] == []


def test_a_picture_that_does_not_fit_the_storage_quota_fails_the_reply(worker, model, monkeypatch):
    # Given an owner with 100 bytes of storage
    _setting(monkeypatch, "STORAGE_QUOTA_BYTES", "100")
    thread, reply_id = _draw(worker)
    # When the picture is made
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply fails with storage_quota_exceeded, in words, and nothing is stored
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "storage_quota_exceeded"
    assert "storage quota" in reply["error"]["message"]
    assert not worker.object_keys()
    # (what is counted is the prompt's message, not a picture)
    prompt = content_bytes([TextPart(text="a fox")])
    assert worker.call_api("GET", "/usage").body["storage"]["bytes"] == prompt


# ---- usage of the day --------------------------------------------------------------------


def _generation(aws) -> dict:
    return aws.call_api("GET", "/usage").body["generation"]


def test_a_reply_counts_once_with_its_tokens(worker, model):
    # Given a question / When its reply is made
    thread, reply_id = _ask(worker, "hello")
    worker.deliver("generations")
    # Then today's usage has one reply and its tokens
    usage = _reply(worker, thread, reply_id)["usage"]
    generation = _generation(worker)
    assert generation["day"] == iso_from_ms(now_ms())[:10]
    assert generation["replies"] == 1 and generation["images"] == 0
    assert generation["promptTokens"] == usage["promptTokens"] > 0
    assert generation["completionTokens"] == usage["completionTokens"] > 0


def test_the_same_job_delivered_twice_counts_once(worker, model):
    # Given a job whose record is delivered twice
    _ask(worker, "hello")
    event = worker.sqs_event_for("generations", worker.drain("generations"))
    # When both deliveries run
    lambda_handler(event, LambdaContext("generate", 300))
    lambda_handler(event, LambdaContext("generate", 300))
    # Then the reply is counted once
    assert _generation(worker)["replies"] == 1


def test_a_retried_reply_counts_once_when_it_finally_ends(worker, model):
    # Given a model that answers 500 first, then succeeds
    model.fail_next(500)
    _ask(worker, "hello")
    # When the job fails back to the queue and comes again
    assert len(worker.deliver("generations")["batchItemFailures"]) == 1
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then one reply is counted
    assert _generation(worker)["replies"] == 1


def test_a_failed_reply_and_a_picture_are_counted_by_kind(worker, model):
    # Given a reply the model refuses, and a picture
    _ask(worker, "please [[fail:400]]")
    _draw(worker)
    # When both are made
    worker.deliver("generations")
    worker.deliver("generations")
    # Then today has one reply (it ended, failed) and one image
    generation = _generation(worker)
    assert generation["replies"] == 1 and generation["images"] == 1


def test_usage_lists_the_limits_a_client_meets(worker, model):
    body = worker.call_api("GET", "/usage").body
    assert body["limits"] == {"generationsPerMinute": get_settings().generations_per_minute}
    assert body["storage"]["quotaBytes"] == get_settings().storage_quota_bytes


def test_inline_data_counts_against_the_budget_by_its_bytes(worker, model, monkeypatch):
    # Given a budget of 10 bytes and an inline image bigger than that
    _setting(monkeypatch, "ATTACHMENT_BUDGET_BYTES", "10")
    data = base64.b64encode(samples.png()).decode()
    thread, reply_id = _ask(worker, [{"type": "image", "data": data, "mediaType": "image/png"}])
    # When the reply is made / Then it is over budget
    worker.deliver("generations")
    assert _reply(worker, thread, reply_id)["error"]["code"] == "attachments_too_large"
