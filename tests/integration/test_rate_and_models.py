"""Generations per owner per minute, decided inside the save transaction, and the
models a client may name."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from agentfiles.data import keys, rates
from agentfiles.data.table import from_item
from agentfiles.logic import messages as message_logic
from agentfiles.models.common import now_ms
from harness.aws import LocalAws, local_aws
from harness.calls import count_calls


@pytest.fixture
def limited() -> Iterator[LocalAws]:
    """Two generations per minute, and a second allowed chat and image model."""
    with local_aws(
        GENERATIONS_PER_MINUTE="2", MODELS="gpt-4.1, o3-mini", IMAGE_MODELS="dall-e-3", INLINE_MAX_BYTES="10"
    ) as aws:
        yield aws


def _ask(aws: LocalAws, thread: str, body: dict | None = None, **headers: str):
    return aws.call_api(
        "POST", f"/threads/{thread}/messages", json_body=body or {"content": "hi"}, headers=headers or None
    )


def _messages(aws: LocalAws, thread: str) -> list[dict]:
    return aws.call_api("GET", f"/threads/{thread}/messages").body["items"]


def _rate_rows(aws: LocalAws, owner: str = "alice") -> list[dict]:
    items = aws.dynamodb.query(
        TableName=aws.resources.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :rate)",
        ExpressionAttributeValues={":pk": {"S": keys.owner_pk(owner)}, ":rate": {"S": "RATE#"}},
        ConsistentRead=True,
    )["Items"]
    return [from_item(item) for item in items]


def test_the_generation_past_the_limit_gets_429_with_retry_after_and_saves_nothing(limited):
    # Given alice's two generations of this minute used
    thread = limited.new_thread()
    assert _ask(limited, thread).status == 201
    assert _ask(limited, thread).status == 201
    limited.drain("generations")
    # When she asks for a third
    with count_calls() as calls:
        reply = _ask(limited, thread)
    # Then 429 rate_limited, with Retry-After in whole seconds until the window ends
    assert reply.status == 429
    assert reply.body["error"]["code"] == "rate_limited"
    retry_after = int(reply.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert reply.body["error"]["details"] == {"retryAfterSeconds": retry_after}
    # And nothing was saved or queued: the refusal was the save transaction itself
    assert calls.counts() == {"TransactWriteItems": 1}
    assert len(_messages(limited, thread)) == 4
    assert limited.drain("generations") == []
    assert [row["count"] for row in _rate_rows(limited)] == [2]


def test_an_image_request_counts_as_a_generation(limited):
    # Given one reply and one image this minute
    thread = limited.new_thread()
    assert _ask(limited, thread).status == 201
    assert limited.call_api("POST", f"/threads/{thread}/images", json_body={"prompt": "a cat"}).status == 202
    # When she asks for another image
    reply = limited.call_api("POST", f"/threads/{thread}/images", json_body={"prompt": "a dog"})
    # Then it is over the limit
    assert reply.status == 429 and "Retry-After" in reply.headers


def test_messages_that_ask_for_no_reply_are_not_limited(limited):
    # Given the limit reached
    thread = limited.new_thread()
    _ask(limited, thread)
    _ask(limited, thread)
    # When alice saves notes that ask for no reply / Then they are saved, and not counted
    for _ in range(3):
        assert _ask(limited, thread, {"content": "a note", "generate": False}).status == 201
    assert [row["count"] for row in _rate_rows(limited)] == [2]


def test_a_retry_with_the_same_idempotency_key_is_answered_not_limited(limited):
    # Given two generations, the second under an Idempotency-Key
    thread = limited.new_thread()
    _ask(limited, thread)
    saved = _ask(limited, thread, None, **{"Idempotency-Key": "k-1"})
    assert saved.status == 201
    # When the client retries it (its answer was lost), at the limit
    again = _ask(limited, thread, None, **{"Idempotency-Key": "k-1"})
    # Then it gets what was saved, and the count did not move
    assert again.status == 201 and again.body["message"]["id"] == saved.body["message"]["id"]
    assert [row["count"] for row in _rate_rows(limited)] == [2]


def test_a_new_minute_opens_a_new_window(limited, monkeypatch):
    # Given the limit reached in this minute
    thread = limited.new_thread()
    _ask(limited, thread)
    _ask(limited, thread)
    assert _ask(limited, thread).status == 429
    # When the next window begins
    later = now_ms() + rates.WINDOW_MS
    monkeypatch.setattr(message_logic, "now_ms", lambda: later)
    # Then alice may ask again, counted in a row of its own that expires
    assert _ask(limited, thread).status == 201
    rows = sorted(_rate_rows(limited), key=lambda row: row["sk"])
    assert [row["count"] for row in rows] == [2, 1]
    assert all(row["expiresAt"] * 1000 > later for row in rows)


def test_each_owner_has_a_window_of_their_own(limited):
    # Given alice at the limit
    thread = limited.new_thread()
    _ask(limited, thread)
    _ask(limited, thread)
    # When bob asks / Then he is not limited by her
    bobs = limited.new_thread(sub="bob")
    assert (
        limited.call_api("POST", f"/threads/{bobs}/messages", sub="bob", json_body={"content": "hi"}).status
        == 201
    )


# ---- models --------------------------------------------------------------------------


def test_get_models_lists_the_defaults_first_then_the_allowed_ones(limited):
    # Given MODELS and IMAGE_MODELS / When a client asks
    reply = limited.call_api("GET", "/models")
    # Then the defaults come first, and are named as such
    assert reply.status == 200
    assert reply.body == {
        "chat": ["gpt-4o-mini", "gpt-4.1", "o3-mini"],
        "image": ["gpt-image-1", "dall-e-3"],
        "default": {"chat": "gpt-4o-mini", "image": "gpt-image-1"},
        "capabilities": {
            model: {"images": True, "files": True, "maxImageSide": 2048, "maxImageShortSide": 768}
            for model in ("gpt-4o-mini", "gpt-4.1", "o3-mini")
        },
    }


def test_without_an_allowlist_only_the_defaults_may_be_named(aws):
    assert aws.call_api("GET", "/models").body["chat"] == ["gpt-4o-mini"]
    thread = aws.new_thread()
    assert _ask(aws, thread, {"content": "hi", "model": "gpt-4o-mini"}).status == 201
    assert _ask(aws, thread, {"content": "hi", "model": "gpt-4.1"}).status == 422


def test_an_allowed_model_is_the_one_the_reply_is_made_with(limited):
    thread = limited.new_thread()
    reply = _ask(limited, thread, {"content": "hi", "model": "o3-mini"})
    assert reply.status == 201 and reply.body["reply"]["model"] == "o3-mini"


def test_a_model_not_allowed_is_422_and_saves_nothing_and_moves_no_count(limited):
    # Given a message naming a model not on the list, with a large inline part that
    # would otherwise be stored as a file
    thread = limited.new_thread()
    data = base64.b64encode(b"z" * 100).decode()
    body = {"content": [{"type": "file", "data": data, "mediaType": "text/plain"}], "model": "gpt-4-32k"}
    # When it is sent
    with count_calls() as calls:
        reply = _ask(limited, thread, body)
    # Then 422 model_not_allowed, naming what is allowed
    assert reply.status == 422
    assert reply.body["error"]["code"] == "model_not_allowed"
    assert reply.body["error"]["details"]["allowed"] == ["gpt-4o-mini", "gpt-4.1", "o3-mini"]
    # And nothing was written anywhere: no call at all, no message, file, count or job
    assert not calls.calls
    assert _messages(limited, thread) == []
    assert not limited.object_keys()
    assert _rate_rows(limited) == []
    assert limited.call_api("GET", "/usage").body["storage"]["files"] == 0
    assert limited.drain("generations") == []


def test_an_image_model_not_allowed_is_422(limited):
    thread = limited.new_thread()
    ok = limited.call_api("POST", f"/threads/{thread}/images", json_body={"prompt": "a", "model": "dall-e-3"})
    refused = limited.call_api(
        "POST", f"/threads/{thread}/images", json_body={"prompt": "a", "model": "gpt-4.1"}
    )
    assert ok.status == 202 and ok.body["reply"]["model"] == "dall-e-3"
    assert refused.status == 422 and refused.body["error"]["code"] == "model_not_allowed"
    assert refused.body["error"]["details"]["allowed"] == ["gpt-image-1", "dall-e-3"]
