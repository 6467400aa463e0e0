"""The generate function on moto, answered by the built-in fake model over HTTP."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
from PIL import Image

from agentfiles import topology
from agentfiles.data.table import from_item
from agentfiles_local.events import LambdaContext, sqs_event, sqs_record
from functions.generate.handler import lambda_handler
from harness import samples
from harness.aws import while_writing
from harness.calls import count_calls


def _ask(aws, content, **extra):
    thread = aws.new_thread()
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content, **extra})
    assert reply.status == 201, reply.body
    return thread, reply.body["reply"]["id"]


def _reply(aws, thread, reply_id):
    return aws.call_api("GET", f"/threads/{thread}/messages/{reply_id}").body["message"]


def _text(message) -> str:
    return "".join(p.get("text", "") for p in message["content"])


def _replies(aws, thread):
    items = aws.call_api("GET", f"/threads/{thread}/messages").body["items"]
    return [m for m in items if m["role"] == "assistant"]


def test_a_question_about_an_image_gets_an_answer_that_names_its_true_format_and_size(worker, model):
    # Given a 64x48 PNG and a question about it
    file = worker.small_file(samples.png(64, 48), "image/png")
    thread, reply_id = _ask(
        worker, [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": file["id"]}]
    )
    # When the generation job runs
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply is a success that saw the image's real bytes
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "success"
    assert "image 1: PNG 64x48" in _text(reply) and 'You said: "what is this?"' in _text(reply)
    assert reply["usage"]["totalTokens"] > 0 and reply["finishReason"] == "stop"
    assert model.calls[0]["saw"][0]["source"] == "data"  # inline mode sends a data URL


def test_a_pdf_reaches_the_model_as_a_file_part_and_a_text_file_as_text(worker, model):
    pdf = worker.small_file(samples.pdf(pages=3), "application/pdf", filename="report.pdf")
    notes = worker.small_file(b"the secret word is pumpkin", "text/plain", filename="notes.txt")
    thread, reply_id = _ask(
        worker,
        [
            {"type": "text", "text": "summarise"},
            {"type": "file", "fileId": pdf["id"]},
            {"type": "file", "fileId": notes["id"]},
        ],
    )
    worker.deliver("generations")
    text = _text(_reply(worker, thread, reply_id))
    assert 'file 1: PDF "report.pdf" with 3 page(s)' in text
    assert "pumpkin" in text
    sent = model.calls[0]["sent"][-1]["content"]
    assert [p["type"] for p in sent] == ["text", "file", "text"]


def test_inline_data_parts_and_external_urls_reach_the_model(worker, model):
    # Given an inline JPEG part
    data = base64.b64encode(samples.jpeg(5, 7)).decode()
    thread, reply_id = _ask(worker, [{"type": "image", "data": data, "mediaType": "image/jpeg"}])
    worker.deliver("generations")
    assert "image 1: JPEG 5x7" in _text(_reply(worker, thread, reply_id))


def test_history_up_to_the_prompt_is_sent(worker, model):
    thread = worker.new_thread()
    for text in ("first", "second"):
        worker.call_api("POST", f"/threads/{thread}/messages", json_body={"content": text})
        worker.deliver("generations")
    sent = model.calls[-1]["sent"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "History: 3 message(s)" in model.calls[-1]["reply"]


def test_in_presigned_mode_the_model_is_given_a_url_and_a_url_it_cannot_fetch_fails_the_reply(
    worker, model, monkeypatch
):
    # Given presigned URLs that point at S3 itself, which the model on this machine
    # cannot reach (moto runs in-process here; the local stack serves them for real)
    from agentfiles.settings import get_settings

    monkeypatch.setenv("URL_MODE", "presigned")
    get_settings.cache_clear()
    file = worker.small_file(samples.png(), "image/png")
    thread, reply_id = _ask(worker, [{"type": "image", "fileId": file["id"]}])
    # When the job runs
    result = worker.deliver("generations")
    # Then the model was handed a presigned https URL, could not fetch it, and said so (a 400),
    # so the reply failed at once without a retry
    assert result == {"batchItemFailures": []}
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "model_rejected"
    url = model.calls[0]["sent"][-1]["content"][0]["image_url"]["url"]
    assert url.startswith("https://") and "X-Amz-Signature=" in url


def test_public_mode_builds_urls_from_the_public_base(worker, model, monkeypatch):
    from agentfiles.settings import get_settings

    monkeypatch.setenv("URL_MODE", "public")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://cdn.example.com/")
    get_settings.cache_clear()
    file = worker.small_file(samples.png(), "image/png")
    _ask(worker, [{"type": "image", "fileId": file["id"]}])
    worker.deliver("generations")
    url = model.calls[0]["sent"][-1]["content"][0]["image_url"]["url"]
    # The image's copy for the model's geometry, made at upload (see test_model_capabilities)
    assert url == f"https://cdn.example.com/derived/alice/{file['id']}/model-2048x768"


def test_streamed_text_can_be_read_by_seq_while_streaming_and_adds_up_to_the_final_reply(worker, model):
    # Given a slow 200-word reply and frequent flushes
    model.configure(chunk_delay_s=0.002, word_count=200)
    thread, reply_id = _ask(worker, "tell me a long story")
    seen: list[tuple[str, int]] = []
    text, last_seq = "", 0
    done = threading.Event()

    def run() -> None:
        try:
            worker.deliver("generations")
        finally:
            done.set()

    # When the worker streams while a client catches up, each time after what it has
    runner = threading.Thread(target=run)
    runner.start()
    while not done.is_set():
        after = {"after": str(last_seq)}
        stream = while_writing(
            lambda after=after: (
                worker.call_api("GET", f"/threads/{thread}/messages/{reply_id}/stream", query=after).body
            )
        )
        for delta in stream["deltas"]:
            assert delta["seq"] == last_seq + 1, "a gap or a repeat"
            text, last_seq = text + delta["text"], delta["seq"]
        seen.append((stream["status"], len(text)))
    runner.join()
    for delta in worker.call_api(
        "GET", f"/threads/{thread}/messages/{reply_id}/stream", query={"after": str(last_seq)}
    ).body["deltas"]:
        text, last_seq = text + delta["text"], delta["seq"]
    final = _reply(worker, thread, reply_id)
    # Then the client saw partial text while streaming, and what it pieced together is the final reply
    partial = [length for status, length in seen if status == "streaming" and length > 0]
    assert partial, seen[:5]
    assert final["status"] == "success" and final["lastSeq"] == last_seq
    assert text == _text(final) and len(text) > min(partial)


def test_writes_per_reply_follow_the_flush_interval_not_the_chunk_count(worker, model, monkeypatch):
    from agentfiles.settings import get_settings

    # Given a 200-word stream and a flush interval longer than the whole reply
    model.configure(word_count=200)
    monkeypatch.setenv("STREAM_FLUSH_MS", "60000")
    get_settings.cache_clear()
    _ask(worker, "long please")
    # When it runs
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the reply row was written once at the lease and twice at the end (its count on
    # the owner's usage in a small transaction, then the text in one plain update),
    # whatever the chunk count
    writes = [name for name in calls.names() if name in ("UpdateItem", "TransactWriteItems")]
    assert writes == ["UpdateItem", "TransactWriteItems", "UpdateItem"]
    assert len(model.calls[0]["reply"].split()) == 200


def test_a_rate_limit_then_success_makes_exactly_one_reply(worker, model):
    model.fail_next(429)
    thread, reply_id = _ask(worker, "hello")
    # First delivery: 429 → the record fails back to the queue, the reply waits pending
    first = worker.deliver("generations")
    assert len(first["batchItemFailures"]) == 1
    assert _reply(worker, thread, reply_id)["status"] == "pending"
    # Second delivery: success
    assert worker.deliver("generations") == {"batchItemFailures": []}
    assert worker.deliver("generations") is None
    replies = _replies(worker, thread)
    assert len(replies) == 1 and replies[0]["status"] == "success"
    assert [c["status"] for c in model.calls] == [429, 200]


def test_a_persistent_server_error_ends_in_the_dlq_with_the_reply_failed(worker, model):
    model.fail_always(500)
    thread, reply_id = _ask(worker, "hello")
    # When SQS hands the job out until its max receives
    for _ in range(topology.MAX_RECEIVES):
        result = worker.deliver("generations")
        assert len(result["batchItemFailures"]) == 1
    # Then the next receive finds it moved to the DLQ, and the reply says why
    assert worker.deliver("generations") is None
    dead = worker.sqs.receive_message(QueueUrl=worker.resources.dlq_urls["generations"]).get("Messages", [])
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["replyId"] == reply_id
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "model_error"
    assert len(model.calls) == topology.MAX_RECEIVES


def test_a_bad_request_fails_the_reply_at_once_without_retry(worker, model):
    thread, reply_id = _ask(worker, "please [[fail:400]]")
    assert worker.deliver("generations") == {"batchItemFailures": []}
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "content_policy"
    assert worker.deliver("generations") is None
    assert len(model.calls) == 1


def test_the_same_record_delivered_twice_makes_one_reply_and_one_model_call(worker, model):
    thread, _reply_id = _ask(worker, "hello")
    messages = worker.drain("generations")
    event = worker.sqs_event_for("generations", messages)
    assert lambda_handler(event, LambdaContext("generate", 300)) == {"batchItemFailures": []}
    assert lambda_handler(event, LambdaContext("generate", 300)) == {"batchItemFailures": []}
    assert len(model.calls) == 1
    assert len(_replies(worker, thread)) == 1


def test_a_delivery_while_another_worker_streams_comes_back_later(worker, model):
    # Given a reply another worker is streaming under a live lease
    from agentfiles.data import reply_rows
    from agentfiles.models.common import now_ms
    from agentfiles.models.messages import MessageRef

    thread, reply_id = _ask(worker, "hello")
    lease = reply_rows.Lease(MessageRef("alice", thread, reply_id), "other")
    assert reply_rows.take_lease(lease, now_ms(), now_ms() + 60_000)
    # When the job is delivered
    result = worker.deliver("generations")
    # Then it fails back to the queue, untouched, without a model call
    assert len(result["batchItemFailures"]) == 1
    assert model.calls == []


def test_an_expired_lease_is_taken_over(worker, model):
    from agentfiles.data import reply_rows
    from agentfiles.models.common import now_ms
    from agentfiles.models.messages import MessageRef

    thread, reply_id = _ask(worker, "hello")
    lease = reply_rows.Lease(MessageRef("alice", thread, reply_id), "crashed")
    assert reply_rows.take_lease(lease, now_ms() - 10_000, now_ms() - 1)
    assert worker.deliver("generations") == {"batchItemFailures": []}
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_reply_deleted_mid_stream_stops_its_writer(worker, model):
    model.configure(chunk_delay_s=0.002, word_count=300)
    thread, reply_id = _ask(worker, "hello")
    runner = threading.Thread(target=worker.deliver, args=("generations",))
    runner.start()
    while _reply(worker, thread, reply_id)["status"] == "pending":
        pass
    assert worker.call_api("DELETE", f"/threads/{thread}/messages/{reply_id}").status == 204
    runner.join()
    assert worker.call_api("GET", f"/threads/{thread}/messages/{reply_id}").status == 404


def test_a_body_that_is_not_a_job_goes_to_the_dlq_without_failing_the_batch(worker, model):
    thread, reply_id = _ask(worker, "hello")
    good = worker.drain("generations")
    event = worker.sqs_event_for("generations", good)
    event["Records"].append(sqs_record('{"kind": "nonsense"}', worker.resources.queue_arns["generations"]))
    assert lambda_handler(event, LambdaContext("generate", 300)) == {"batchItemFailures": []}
    dead = worker.sqs.receive_message(QueueUrl=worker.resources.dlq_urls["generations"]).get("Messages", [])
    assert [m["Body"] for m in dead] == ['{"kind": "nonsense"}']
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_without_a_configured_model_the_reply_fails_clearly(worker, model, monkeypatch):
    from agentfiles import model_client
    from agentfiles.settings import get_settings

    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    get_settings.cache_clear()
    model_client.reset()
    thread, reply_id = _ask(worker, "hello")
    worker.deliver("generations")
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "model_not_configured"


def test_the_api_key_is_read_once_per_max_age_and_a_rotated_key_is_picked_up_warm(worker, model, monkeypatch):
    from agentfiles import model_client
    from agentfiles.settings import get_settings

    # Given the key in Secrets Manager, kept for a second once read
    arn = worker.sm.create_secret(Name="openai", SecretString="sk-first")["ARN"]
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY_SECRET_ARN", arn)
    monkeypatch.setenv("SECRET_MAX_AGE_SECONDS", "1")
    get_settings.cache_clear()
    model_client.reset()
    # When the worker asks for its client twice
    with count_calls() as calls:
        first = model_client.model_client()
        second = model_client.model_client()
    # Then the secret was read once, and both are the same client
    assert first is second and first.api_key == "sk-first"
    assert calls.names().count("GetSecretValue") == 1

    # Given the key rotated, and the cached value older than its max age
    worker.sm.put_secret_value(SecretId=arn, SecretString="sk-rotated")
    time.sleep(1.1)
    # When the same (warm) container asks again
    rotated = model_client.model_client()
    # Then it uses the new key without a cold start
    assert rotated.api_key == "sk-rotated"


def test_an_image_request_gets_a_picture_that_the_reply_holds_one_reference_on(worker, model):
    # Given a thread
    thread = worker.new_thread()
    # When an image is asked for and the job runs
    accepted = worker.call_api(
        "POST", f"/threads/{thread}/images", json_body={"prompt": "a red fox", "size": "256x256"}
    )
    assert accepted.status == 202
    reply_id = accepted.body["reply"]["id"]
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the reply has an image part whose file is ready, held once, and is a real PNG
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "success"
    [part] = reply["content"]
    assert part["type"] == "image" and part["mediaType"] == "image/png" and part["url"]
    file = worker.call_api("GET", f"/files/{part['fileId']}").body["file"]
    assert file["status"] == "ready" and file["refcount"] == 1
    data = worker.s3.get_object(Bucket=worker.resources.bucket_name, Key=f"files/alice/{file['id']}")[
        "Body"
    ].read()
    assert Image.open(io.BytesIO(data)).size == (256, 256)
    assert reply["fileIds"] == [file["id"]]
    assert model.calls[0]["endpoint"] == "images.generations"


def test_deleting_an_image_reply_releases_its_picture(worker, model):
    thread = worker.new_thread()
    reply_id = worker.call_api("POST", f"/threads/{thread}/images", json_body={"prompt": "x"}).body["reply"][
        "id"
    ]
    worker.deliver("generations")
    file_id = _reply(worker, thread, reply_id)["fileIds"][0]
    worker.call_api("DELETE", f"/threads/{thread}/messages/{reply_id}")
    row = worker.file_row("alice", file_id)
    assert row["refcount"] == 0 and "gcShard" in row


@pytest.mark.parametrize("receive_count", [1, topology.MAX_RECEIVES])
def test_an_unexpected_error_fails_the_record_and_only_the_last_attempt_fails_the_reply(
    worker, model, monkeypatch, receive_count
):
    from agentfiles.logic import chat

    thread, reply_id = _ask(worker, "hello")
    messages = worker.drain("generations")

    def broken(*_, **__):
        raise RuntimeError("boom")

    monkeypatch.setattr(chat, "answer", broken)
    record = sqs_record(
        messages[0]["Body"], worker.resources.queue_arns["generations"], receive_count=receive_count
    )
    result = lambda_handler(sqs_event([record]), LambdaContext("generate", 300))
    assert len(result["batchItemFailures"]) == 1
    expected = "failed" if receive_count == topology.MAX_RECEIVES else "pending"
    assert _reply(worker, thread, reply_id)["status"] == expected


def test_lease_fields_never_leak_into_the_api(worker, model):
    thread, reply_id = _ask(worker, "hello")
    worker.deliver("generations")
    row = worker.dynamodb.get_item(
        TableName=worker.resources.table_name,
        Key={"pk": {"S": f"OWNER#alice#THREAD#{thread}"}, "sk": {"S": f"MSG#{reply_id}"}},
    )["Item"]
    assert not {"leaseId", "leaseUntil", "sweepShard", "sweepAt"} & set(from_item(row))
