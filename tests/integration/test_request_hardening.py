"""Inputs that once crossed a limit they should not have: sizes counted in characters,
filenames with line breaks, bodies that are not JSON, and the shape of a 401.

Each answers a typed 4xx, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import pytest

from agentfiles_local.events import LambdaContext, http_api_event
from harness import samples


def _call_raw(
    method: str, path: str, *, headers: dict[str, str], body: str | None, sub: str | None = "alice"
):
    from functions.api.handler import lambda_handler

    event = http_api_event(method, path, headers=headers, body=body, claims={"sub": sub} if sub else None)
    return lambda_handler(event, LambdaContext("api", 29))


# ---- sizes are bytes -------------------------------------------------------------


def test_given_text_whose_utf8_bytes_exceed_an_item_when_saved_then_413_message_too_large(aws):
    # Given a thread, and text under the character limit whose UTF-8 form (4 bytes a
    # character) is over what one DynamoDB item holds
    thread = aws.new_thread()
    text = "\N{GRINNING FACE}" * 99_000
    assert len(text) < 100_000 < len(text.encode())

    # When it is saved as a message
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": text})

    # Then it is refused as too large, with the envelope, and nothing is saved
    assert reply.status == 413, reply.body
    assert reply.body["error"]["code"] == "message_too_large"
    listed = aws.call_api("GET", f"/threads/{thread}/messages")
    assert listed.body["items"] == []


def test_given_multibyte_text_under_the_byte_limit_when_saved_then_it_is_kept_whole(aws):
    # Given text of 80,000 three-byte characters (240 KB)
    thread = aws.new_thread()
    text = "\N{CJK UNIFIED IDEOGRAPH-6587}" * 80_000

    # When it is saved / Then it is stored and reads back unchanged
    reply = aws.call_api(
        "POST", f"/threads/{thread}/messages", json_body={"content": text, "generate": False}
    )
    assert reply.status == 201, reply.body
    assert reply.body["message"]["content"][0]["text"] == text


# ---- one filename rule --------------------------------------------------------------


@pytest.mark.parametrize("filename", ["report\r\nSet-Cookie: x=1.pdf", "tab\there.txt", "nul\x00.txt"])
def test_given_a_file_part_whose_filename_has_control_characters_when_saved_then_422(aws, filename):
    # Given a file part with inline data and a filename holding a control character
    thread = aws.new_thread()
    part = {
        "type": "file",
        "data": base64.b64encode(b"hello").decode(),
        "mediaType": "text/plain",
        "filename": filename,
    }

    # When it is saved
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": [part]})

    # Then it is refused by the same rule as an upload's filename, and nothing is stored
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "validation_error"
    assert "control characters" in reply.body["error"]["message"]
    assert aws.object_keys() == set()


def test_given_a_large_inline_file_part_when_its_file_is_read_then_the_download_names_it_safely(
    aws, monkeypatch
):
    # Given inline data large enough to become a stored file, under a plain filename
    from agentfiles.settings import get_settings

    monkeypatch.setenv("INLINE_MAX_BYTES", "1000")
    get_settings.cache_clear()
    pdf = samples.pdf(3)
    assert len(pdf) > 1000
    thread = aws.new_thread()
    part = {"type": "file", "data": base64.b64encode(pdf).decode(), "mediaType": "application/pdf"}
    reply = aws.call_api(
        "POST",
        f"/threads/{thread}/messages",
        json_body={"content": [{**part, "filename": "q3 report.pdf"}], "generate": False},
    )
    assert reply.status == 201, reply.body
    file_id = reply.body["message"]["content"][0]["fileId"]

    # When the file is read
    file = aws.call_api("GET", f"/files/{file_id}").body["file"]

    # Then its download URL names it (a PDF opens inline), with no raw control character
    disposition = unquote(file["url"].split("response-content-disposition=")[1].split("&")[0])
    assert disposition.startswith('inline; filename="q3 report.pdf"')
    assert not any(ord(c) < 0x20 for c in disposition)


# ---- bodies that are not JSON ----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain", "application/xml"],
)
def test_given_a_json_route_when_called_with_another_content_type_then_415_with_the_envelope(
    aws, content_type
):
    # Given a JSON route / When it is called with a body declared as something else
    response = _call_raw(
        "POST",
        "/threads",
        headers={"content-type": content_type},
        body='{"title": "x"}',
    )

    # Then the answer is a typed 415, not a 500
    assert response["statusCode"] == 415, response
    assert '"unsupported_media_type"' in response["body"]
    assert response["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", ""])
def test_given_a_json_route_when_the_body_is_not_json_then_a_typed_4xx(aws, content_type):
    # Given a body that does not parse as JSON
    headers = {"content-type": content_type} if content_type else {}
    response = _call_raw("POST", "/threads", headers=headers, body="title=x&y")

    # Then it is a 400 with the envelope
    assert response["statusCode"] == 400, response
    assert '"code":"invalid_json"' in response["body"]


def test_given_a_json_route_when_called_with_a_json_subtype_then_it_is_read(aws):
    # Given a body declared with a structured +json type / When it is sent
    response = _call_raw(
        "POST", "/threads", headers={"content-type": "application/vnd.api+json"}, body='{"title": "x"}'
    )
    # Then it is read as JSON
    assert response["statusCode"] == 201, response


# ---- a 401 is the gateway's --------------------------------------------------------------


@pytest.mark.parametrize("sub", [None, "a#b", "a/b"])
def test_given_a_caller_without_a_usable_subject_when_a_route_runs_then_401_is_the_gateways_body(aws, sub):
    # Given claims the function cannot use as an owner (none, or a subject that would
    # break the owner-scoped keys)
    # When a private route runs
    response = _call_raw("GET", "/files", headers={}, body=None, sub=sub)

    # Then the answer is exactly what the HTTP API's JWT authorizer answers
    assert response["statusCode"] == 401
    assert response["body"] == '{"message":"Unauthorized"}'
