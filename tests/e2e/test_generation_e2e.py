"""Generation end to end, over HTTP against `agentfiles serve` and its built-in model:
the model really fetches or decodes what it is sent, so its answer proves it got
the right bytes, in each way images can reach it."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from PIL import Image

from tests.e2e.local_stack import LocalStackProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _png(width: int, height: int) -> bytes:
    seed = uuid.uuid4().bytes  # unique bytes per call, so no dedup between tests
    image = Image.new("RGB", (width, height), (seed[0], seed[1], seed[2]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _fake(stack: LocalStackProcess, method: str, path: str, json: Any = None) -> Any:
    base = stack.health["model"]["baseUrl"].removesuffix("/v1")
    response = requests.request(method, f"{base}{path}", json=json, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _ask(stack: LocalStackProcess, token: str, content: Any) -> tuple[str, str]:
    thread = stack.api("POST", "/threads", token, json={}).json()["thread"]["id"]
    saved = stack.api("POST", f"/threads/{thread}/messages", token, json={"content": content})
    assert saved.status_code == 201, saved.text
    return thread, saved.json()["reply"]["id"]


def _reply(stack: LocalStackProcess, token: str, thread: str, reply_id: str) -> dict[str, Any]:
    response = stack.api("GET", f"/threads/{thread}/messages/{reply_id}", token)
    assert response.status_code == 200, response.text
    return response.json()["message"]


def _finished(stack: LocalStackProcess, token: str, thread: str, reply_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        reply = _reply(stack, token, thread, reply_id)
        return reply if reply["status"] in ("success", "failed") else None

    return wait_for(ended, timeout=45, what=f"reply {reply_id} to end")


def _text(message: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in message["content"])


@pytest.fixture(scope="module", params=["inline", "presigned", "public"])
def stack_in_mode(
    request: pytest.FixtureRequest, local_stack: LocalStackProcess
) -> Iterator[LocalStackProcess]:
    """The session's stack for inline (its local default); a stack of its own for the
    URL modes where the model fetches the image over HTTP from the stack's S3."""
    if request.param == "inline":
        yield local_stack
        return
    stack = LocalStackProcess.start({"URL_MODE": request.param})
    yield stack
    stack.stop()


def test_a_question_about_an_image_is_answered_with_its_true_format_and_size_in_each_url_mode(stack_in_mode):
    # Given a user and a 64x48 PNG uploaded through its presigned URL
    stack = stack_in_mode
    token = stack.token(f"gen-{uuid.uuid4().hex[:8]}")
    file_id = stack.upload(token, _png(64, 48), "image/png", filename="photo.png")
    # When they ask about it
    thread, reply_id = _ask(
        stack, token, [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": file_id}]
    )
    # Then the reply, made from what the model really received, names the true format and size
    reply = _finished(stack, token, thread, reply_id)
    assert reply["status"] == "success", reply
    assert "image 1: PNG 64x48" in _text(reply)
    # And the model got it the way the mode says: a data URL inline, a URL it fetched otherwise
    mode = stack.health["settings"]["urlMode"]
    saw = [c for c in _fake(stack, "GET", "/_fake/calls")["calls"] if "PNG 64x48" in (c.get("reply") or "")][
        -1
    ]
    assert saw["saw"][0]["source"] == ("data" if mode == "inline" else "url")


def test_a_pdf_reaches_the_model_as_a_file_and_a_text_file_as_text(local_stack):
    from harness.samples import pdf

    token = local_stack.token(f"docs-{uuid.uuid4().hex[:8]}")
    report = local_stack.upload(token, pdf(pages=2) + uuid.uuid4().bytes, "application/pdf", filename="r.pdf")
    notes = local_stack.upload(
        token, f"secret word {uuid.uuid4().hex}".encode(), "text/plain", filename="n.txt"
    )
    thread, reply_id = _ask(
        local_stack,
        token,
        [
            {"type": "text", "text": "read these"},
            {"type": "file", "fileId": report},
            {"type": "file", "fileId": notes},
        ],
    )
    text = _text(_finished(local_stack, token, thread, reply_id))
    assert 'PDF "r.pdf" with 2 page(s)' in text
    assert "secret word" in text


def test_partial_text_is_seen_while_streaming_before_success(local_stack):
    # Given a long, paced reply (markers the built-in model understands)
    token = local_stack.token(f"stream-{uuid.uuid4().hex[:8]}")
    thread, reply_id = _ask(local_stack, token, "tell me a long story [[words:400]] [[delay_ms:10]]")
    # When a client without a socket catches up by seq while it is written
    seen: list[tuple[str, int]] = []
    text, last_seq = "", 0

    def ended() -> bool:
        nonlocal text, last_seq
        stream = local_stack.api(
            "GET", f"/threads/{thread}/messages/{reply_id}/stream", token, params={"after": last_seq}
        ).json()
        for delta in stream["deltas"]:
            text, last_seq = text + delta["text"], delta["seq"]
        seen.append((stream["status"], len(text)))
        return stream["status"] in ("success", "failed")

    wait_for(ended, timeout=60, interval=0.05, what="the streamed reply to end")
    # Then it saw partial text while streaming, and what it pieced together is the final reply
    partial = [length for status, length in seen if status == "streaming" and length > 0]
    assert seen[-1][0] == "success"
    assert partial and min(partial) < len(text)
    assert text == _text(_reply(local_stack, token, thread, reply_id))


def test_a_rate_limit_then_success_makes_one_reply(local_stack):
    token = local_stack.token(f"retry-{uuid.uuid4().hex[:8]}")
    _fake(local_stack, "POST", "/_fake/faults", {"next": [429]})
    thread, reply_id = _ask(local_stack, token, "hello after a 429")
    reply = _finished(local_stack, token, thread, reply_id)
    assert reply["status"] == "success"
    items = local_stack.api("GET", f"/threads/{thread}/messages", token).json()["items"]
    assert [m["role"] for m in items] == ["assistant", "user"]


def test_a_rejected_request_fails_the_reply_without_retry(local_stack):
    token = local_stack.token(f"policy-{uuid.uuid4().hex[:8]}")
    thread, reply_id = _ask(local_stack, token, "please [[fail:400]]")
    reply = _finished(local_stack, token, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "content_policy"
    calls = [
        c
        for c in _fake(local_stack, "GET", "/_fake/calls")["calls"]
        if "[[fail:400]]" in (c.get("text") or "")
    ]
    assert len(calls) == 1


def test_a_persistent_server_error_ends_in_the_dlq_with_the_reply_failed():
    # Given a stack whose retries come back at once, and a model that always fails
    stack = LocalStackProcess.start({"RETRY_BASE_SECONDS": "0", "QUEUE_VISIBILITY_SECONDS": "1"})
    try:
        _fake(stack, "POST", "/_fake/faults", {"always": 500})
        token = stack.token("dlq-user")
        thread, reply_id = _ask(stack, token, "hello")
        # Then the reply fails once the job used its receives, and the job sits in the DLQ
        reply = _finished(stack, token, thread, reply_id)
        assert reply["status"] == "failed" and reply["error"]["code"] == "model_error"
        sqs = stack.aws("sqs")
        dlq = stack.health["deadLetterQueues"]["generations"]

        def parked() -> list[dict[str, Any]]:
            return sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])

        assert reply_id in wait_for(parked, timeout=30, what="the job in the DLQ")[0]["Body"]
    finally:
        stack.stop()


def test_an_image_request_gets_a_picture_the_reply_holds_once(local_stack):
    token = local_stack.token(f"draw-{uuid.uuid4().hex[:8]}")
    thread = local_stack.api("POST", "/threads", token, json={}).json()["thread"]["id"]
    accepted = local_stack.api(
        "POST", f"/threads/{thread}/images", token, json={"prompt": "a fox", "size": "256x256"}
    )
    assert accepted.status_code == 202, accepted.text
    reply = _finished(local_stack, token, thread, accepted.json()["reply"]["id"])
    assert reply["status"] == "success", reply
    [part] = reply["content"]
    file = local_stack.api("GET", f"/files/{part['fileId']}", token).json()["file"]
    assert file["status"] == "ready" and file["refcount"] == 1
    # Its URL is minted once the (emulated) malware scanner passed it too
    picture = requests.get(_url_once_scanned(local_stack, token, part["fileId"]), timeout=10)
    assert picture.status_code == 200
    assert Image.open(io.BytesIO(picture.content)).format == "PNG"


def _url_once_scanned(local_stack, token: str, file_id: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        answer = local_stack.api("GET", f"/files/{file_id}/url", token)
        if answer.status_code == 200:
            return answer.json()["fileUrl"]["url"]
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "file_not_ready", answer.text
        assert time.monotonic() < deadline, "the picture was never scanned"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def refusing_stack() -> Iterator[LocalStackProcess]:
    """A stack whose model is said to read files but refuses `file` parts with a 400, as
    vLLM does, and another model that cannot see images at all."""
    stack = LocalStackProcess.start(
        {
            "FAKE_MODEL_REFUSE": "file",
            "MODEL_CAPABILITIES": json.dumps(
                {"*": {"images": True, "files": True}, "blind": {"images": False, "files": False}}
            ),
            "MODELS": "blind",
        }
    )
    yield stack
    stack.stop()


def test_a_model_that_refuses_a_pdf_never_locks_the_thread_through_the_served_stack(refusing_stack):
    # Given a user, a PDF, and a model that refuses file parts
    stack = refusing_stack
    token = stack.token(f"refuse-{uuid.uuid4().hex[:8]}")
    from harness.samples import pdf

    report = stack.upload(token, pdf(pages=2) + uuid.uuid4().bytes, "application/pdf", filename="report.pdf")
    # When they ask about it
    thread, reply_id = _ask(
        stack, token, [{"type": "text", "text": "summarise"}, {"type": "file", "fileId": report}]
    )
    # Then the reply still succeeds, answered without the PDF, which the model is told was omitted
    reply = _finished(stack, token, thread, reply_id)
    assert reply["status"] == "success", reply
    calls = [c for c in _fake(stack, "GET", "/_fake/calls")["calls"] if c["status"] in (200, 400)][-2:]
    assert [c["status"] for c in calls] == [400, 200]
    # And the next text message in the same thread is answered at once, with no refusal
    before = len(_fake(stack, "GET", "/_fake/calls")["calls"])
    saved = stack.api("POST", f"/threads/{thread}/messages", token, json={"content": "thanks"})
    assert saved.status_code == 201, saved.text
    second = _finished(stack, token, thread, saved.json()["reply"]["id"])
    assert second["status"] == "success", second
    after = _fake(stack, "GET", "/_fake/calls")["calls"][before:]
    assert [c["status"] for c in after] == [200]


def test_a_model_that_cannot_see_gets_a_placeholder_through_the_served_stack(refusing_stack):
    # Given a user, an image, and a model that cannot see images
    stack = refusing_stack
    token = stack.token(f"blind-{uuid.uuid4().hex[:8]}")
    picture = stack.upload(token, _png(32, 24), "image/png", filename="photo.png")
    # When they ask that model about it
    thread = stack.api("POST", "/threads", token, json={}).json()["thread"]["id"]
    content = [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": picture}]
    saved = stack.api(
        "POST", f"/threads/{thread}/messages", token, json={"content": content, "model": "blind"}
    )
    assert saved.status_code == 201, saved.text
    # Then it answers, having been given no image, only the placeholder naming it
    reply = _finished(stack, token, thread, saved.json()["reply"]["id"])
    assert reply["status"] == "success", reply
    assert "image 1:" not in _text(reply)
    call = _fake(stack, "GET", "/_fake/calls")["calls"][-1]
    assert call["saw"] == [] and call["status"] == 200
