"""Crafted requests an attacker or a careless client sends, through the API handler with
API Gateway HTTP API (2.0) events: bodies nested past the JSON decoder's limit, forged
cursors, lone surrogates, bytes that are not UTF-8 under the types API Gateway sends as
base64, filenames that disguise their extension, and parts whose declared type is not
their file's. Each is a typed 4xx with the error envelope, never a 500."""

from __future__ import annotations

import base64
import json

import pytest

from agentfiles_local.events import LambdaContext, http_api_event
from harness import samples

# API Gateway sends a body as text only for text types; these arrive base64-encoded.
BASE64_TYPES = ["", "application/x-www-form-urlencoded", "application/vnd.api+json"]


def _call_raw(method: str, path: str, *, headers: dict[str, str], body: bytes | str | None, query=None):
    from functions.api.handler import lambda_handler

    event = http_api_event(method, path, headers=headers, query=query, body=body, claims={"sub": "alice"})
    response = lambda_handler(event, LambdaContext("api", 29))
    return response["statusCode"], json.loads(response["body"])


def _headers(content_type: str) -> dict[str, str]:
    return {"content-type": content_type} if content_type else {}


# ---- nesting --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", *BASE64_TYPES])
def test_given_a_body_of_100k_brackets_when_posted_then_400_invalid_json(aws, content_type):
    # Given a body that is nothing but 100,000 opening brackets
    thread = aws.new_thread()
    # When it is posted as a message, under each type the API reads as JSON
    status, body = _call_raw(
        "POST", f"/threads/{thread}/messages", headers=_headers(content_type), body="[" * 100_000
    )
    # Then it is a typed 400 with the envelope, not a 500
    assert status == 400, body
    assert body["error"]["code"] == "invalid_json"


def test_given_a_valid_message_with_1100_levels_of_nesting_when_posted_then_400_and_nothing_saved(aws):
    # Given a message that is valid but for a field nested 1,100 levels deep
    thread = aws.new_thread()
    nested = "[" * 1_100 + "]" * 1_100
    raw = '{"content": "hi", "generate": false, "model": ' + nested + "}"
    # When it is posted
    status, body = _call_raw(
        "POST", f"/threads/{thread}/messages", headers={"content-type": "application/json"}, body=raw
    )
    # Then it is refused as malformed JSON, and nothing is saved
    assert status == 400 and body["error"]["code"] == "invalid_json", body
    assert aws.call_api("GET", f"/threads/{thread}/messages").body["items"] == []


@pytest.mark.parametrize("path", ["/threads", "/files", "/threads/{thread}/messages"])
def test_given_a_cursor_that_decodes_to_deeply_nested_json_when_a_page_is_read_then_400_invalid_cursor(
    aws, path
):
    # Given a forged cursor, within the cursor's length limit, whose JSON nests 1,500 levels
    thread = aws.new_thread()
    cursor = base64.urlsafe_b64encode(b"[" * 1_500).decode().rstrip("=")
    assert len(cursor) <= 2048
    # When a page is asked for with it
    status, body = _call_raw(
        "GET", path.format(thread=thread), headers={}, body=None, query={"cursor": cursor}
    )
    # Then it is a typed 400, as any cursor this API did not issue
    assert status == 400, body
    assert body["error"]["code"] == "invalid_cursor"


# ---- text that is not Unicode, bytes that are not UTF-8 -----------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"content": "hi \\ud800", "generate": false}',
        '{"content": [{"type": "text", "text": "hi \\udfff"}], "generate": false}',
    ],
)
def test_given_a_lone_surrogate_in_the_content_when_saved_then_422_and_nothing_saved(aws, raw):
    # Given text holding a lone surrogate (valid JSON, not valid Unicode)
    thread = aws.new_thread()
    # When it is saved
    status, body = _call_raw(
        "POST", f"/threads/{thread}/messages", headers={"content-type": "application/json"}, body=raw
    )
    # Then the request is refused where it comes in, with the envelope, and nothing is saved
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert aws.call_api("GET", f"/threads/{thread}/messages").body["items"] == []


def test_given_a_lone_surrogate_in_a_thread_title_when_created_then_422(aws):
    status, body = _call_raw(
        "POST", "/threads", headers={"content-type": "application/json"}, body='{"title": "\\ud83d"}'
    )
    assert status == 422 and body["error"]["code"] == "validation_error", body


@pytest.mark.parametrize("content_type", BASE64_TYPES)
def test_given_bytes_that_are_not_utf8_under_a_type_sent_as_base64_when_posted_then_400(aws, content_type):
    # Given a body that is not UTF-8, sent as `curl -d` sends it (no type, or a form
    # type) or under a +json type: API Gateway hands each to the function base64-encoded
    thread = aws.new_thread()
    raw = b'{"content": "caf\xe9 \xff", "generate": false}'
    # When it is posted
    status, body = _call_raw("POST", f"/threads/{thread}/messages", headers=_headers(content_type), body=raw)
    # Then it is a typed 400 with the envelope, and nothing is saved
    assert status == 400, body
    assert body["error"]["code"] == "invalid_json"
    assert aws.call_api("GET", f"/threads/{thread}/messages").body["items"] == []


@pytest.mark.parametrize("content_type", BASE64_TYPES)
def test_given_utf8_json_under_a_type_sent_as_base64_when_posted_then_it_is_saved(aws, content_type):
    # Given valid UTF-8 JSON, base64-encoded by API Gateway for its type
    thread = aws.new_thread()
    raw = '{"content": "café ☕", "generate": false}'.encode()
    # When it is posted / Then it is read as JSON and saved whole
    status, body = _call_raw("POST", f"/threads/{thread}/messages", headers=_headers(content_type), body=raw)
    assert status == 201, body
    assert body["message"]["content"][0]["text"] == "café ☕"


# ---- filenames ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "invoice\u202etxt.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as "invoiceexe.txt"
        "report\u2066.pdf",  # LEFT-TO-RIGHT ISOLATE
        "a\u200bb.txt",  # ZERO WIDTH SPACE
        "bom\ufeff.txt",  # ZERO WIDTH NO-BREAK SPACE
        "line\u2028break.txt",  # LINE SEPARATOR
        "para\u2029break.txt",  # PARAGRAPH SEPARATOR
        "c1\x85control.txt",  # NEXT LINE, a C1 control
    ],
)
def test_given_a_filename_with_a_format_control_or_separator_when_named_anywhere_then_422(aws, filename):
    thread = aws.new_thread()
    data = base64.b64encode(b"hello").decode()
    # When it names a presigned upload, a small upload and an inline file part
    upload = aws.call_api(
        "POST", "/files/uploads", json_body={"filename": filename, "mediaType": "text/plain", "size": 5}
    )
    small = aws.call_api(
        "POST", "/files", json_body={"filename": filename, "mediaType": "text/plain", "data": data}
    )
    part = {"type": "file", "data": data, "mediaType": "text/plain", "filename": filename}
    message = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": [part]})
    # Then each is refused by the one filename rule, and nothing is stored
    for reply in (upload, small, message):
        assert reply.status == 422, reply.body
        assert reply.body["error"]["code"] == "validation_error"
        assert "filename" in reply.body["error"]["message"]
    assert aws.object_keys() == set()
    assert aws.call_api("GET", "/files").body["items"] == []


def test_given_a_filename_in_another_script_when_uploaded_then_it_is_kept(aws):
    # Given a filename with letters, marks and spaces from other scripts (none a control)
    filename = "Ωmega résumé 報告 تقرير.txt"
    # When it is uploaded / Then it is kept as given
    assert aws.small_file(b"hello", "text/plain", filename=filename)["filename"] == filename


# ---- a part's type is its file's -----------------------------------------------------------


def _save(aws, thread, parts):
    return aws.call_api(
        "POST", f"/threads/{thread}/messages", json_body={"content": parts, "generate": False}
    )


def test_given_a_text_file_when_a_part_calls_it_a_pdf_then_422_and_no_reference_is_taken(aws):
    # Given a ready text file
    text = aws.small_file(b"not a pdf at all", "text/plain", filename="notes.txt")
    thread = aws.new_thread()
    # When a file part names it as a PDF
    part = {"type": "file", "fileId": text["id"], "mediaType": "application/pdf", "filename": "invoice.pdf"}
    reply = _save(aws, thread, [part])
    # Then it is refused, saying what the file is, and the file gained no reference
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "part_type_mismatch"
    assert reply.body["error"]["details"] == {"fileId": text["id"], "mediaType": "text/plain"}
    assert aws.refcount("alice", text["id"]) == 0
    assert aws.call_api("GET", f"/threads/{thread}/messages").body["items"] == []


def test_given_a_text_file_when_an_image_part_points_at_it_then_422(aws):
    text = aws.small_file(b"just words", "text/plain")
    thread = aws.new_thread()
    reply = _save(aws, thread, [{"type": "image", "fileId": text["id"]}])
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "part_type_mismatch"
    assert aws.refcount("alice", text["id"]) == 0


def test_given_an_image_part_whose_type_is_not_an_image_when_saved_then_422_before_any_write(aws):
    image = aws.small_file(samples.png(8, 8), "image/png")
    thread = aws.new_thread()
    reply = _save(aws, thread, [{"type": "image", "fileId": image["id"], "mediaType": "text/plain"}])
    assert reply.status == 422 and reply.body["error"]["code"] == "part_type_mismatch", reply.body
    assert aws.refcount("alice", image["id"]) == 0


def test_given_parts_whose_types_agree_with_their_files_when_saved_then_each_holds_one_reference(aws):
    # Given an image and a PDF
    image = aws.small_file(samples.png(8, 8), "image/png")
    pdf = aws.small_file(samples.pdf(1), "application/pdf", filename="q3.pdf")
    thread = aws.new_thread()
    # When parts name them as they are, with and without a declared type
    parts = [
        {"type": "image", "fileId": image["id"]},
        {"type": "image", "fileId": image["id"], "mediaType": "image/png"},
        {"type": "file", "fileId": pdf["id"], "mediaType": "application/pdf"},
        {"type": "file", "fileId": image["id"]},
    ]
    reply = _save(aws, thread, parts)
    # Then the message is saved, holding one reference on each file
    assert reply.status == 201, reply.body
    assert aws.refcount("alice", image["id"]) == 1 and aws.refcount("alice", pdf["id"]) == 1
