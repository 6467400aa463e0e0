"""Files end to end, over HTTP against `agentfiles serve`: a presigned upload with a
real HTTP client, the S3 → SQS → upload trigger path in moto, owner isolation,
deduplication, and uploads whose bytes are not what was declared."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from PIL import Image

from tests.e2e.local_stack import LocalStackProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """A real PNG whose pixels (and so bytes) differ from call to call."""
    seed = uuid.uuid4().bytes
    image = Image.new("RGB", (width, height))
    image.putdata([(seed[i % 16], (i * 7) % 256, seed[(i * 3) % 16]) for i in range(width * height)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class User:
    sub: str
    token: str


def new_user(local_stack: LocalStackProcess, name: str) -> User:
    """A subject of its own per test run, so that runs against one stack never meet."""
    sub = f"{name}-{uuid.uuid4().hex[:8]}"
    return User(sub, local_stack.token(sub))


@pytest.fixture
def alice(local_stack: LocalStackProcess) -> User:
    """An owner of each test's own: what one test stores cannot meet another's."""
    return new_user(local_stack, "alice")


@pytest.fixture
def ready_png(local_stack: LocalStackProcess, alice: User) -> dict[str, Any]:
    """Alice's PNG, uploaded through its presigned URL and checked by the trigger."""
    data = png_bytes()
    registered = local_stack.register(alice.token, data, "image/png", filename="cat.png")
    assert registered.status_code == 201, registered.text
    body = registered.json()
    put = local_stack.put(body["upload"], data)
    assert put.status_code == 200, put.text
    file = local_stack.wait_for_file(alice.token, body["file"]["id"])
    return {"data": data, "registered": body, "file": file}


def test_given_no_token_when_a_private_route_is_called_then_the_gateway_answers_401(local_stack):
    # When
    response = local_stack.api("POST", "/files/uploads", json={"filename": "a", "mediaType": "image/png"})
    # Then: the JWT authorizer's answer, not the function's
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert "invalid_token" in response.headers["www-authenticate"]


def test_given_no_token_when_the_schema_and_docs_are_asked_then_they_answer(local_stack):
    schema = local_stack.api("GET", "/openapi.json")
    docs = local_stack.api("GET", "/docs")
    assert schema.status_code == 200
    assert "/files/uploads" in schema.json()["paths"]
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


def test_given_a_png_put_to_its_presigned_url_when_the_trigger_has_run_then_it_is_ready(
    local_stack, alice, ready_png
):
    # Given: the registration signed the declared bytes
    upload = ready_png["registered"]["upload"]
    assert upload["method"] == "PUT"
    assert upload["headers"]["Content-Type"] == "image/png"
    assert "x-amz-checksum-sha256" in upload["headers"]
    # Then: the trigger checked the object and accepted it
    file = ready_png["file"]
    assert file["status"] == "ready"
    assert file["size"] == len(ready_png["data"])
    assert file["sha256"] == hashlib.sha256(ready_png["data"]).hexdigest()
    # and the object stays in the bucket under the server-made key
    assert local_stack.object_exists(f"files/{alice.sub}/{file['id']}")


def test_given_a_ready_file_when_its_download_url_is_fetched_then_it_returns_the_same_bytes(
    local_stack, alice, ready_png
):
    # When: a fresh read mints the URL, and a plain HTTP client follows it
    file = local_stack.api("GET", f"/files/{ready_png['file']['id']}", alice.token).json()["file"]
    download = requests.get(file["url"], timeout=30)
    # Then
    assert download.status_code == 200
    assert download.content == ready_png["data"]


def test_given_alices_ready_file_when_bob_asks_for_it_then_he_gets_404(local_stack, ready_png):
    # Given
    bob = new_user(local_stack, "bob")
    # When
    response = local_stack.api("GET", f"/files/{ready_png['file']['id']}", bob.token)
    # Then: the same answer as for a file that does not exist
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "file_not_found"


def test_given_a_ready_file_when_its_content_is_registered_again_then_the_same_file_comes_back(
    local_stack, alice, ready_png
):
    # When: the same owner registers the same bytes under another name
    again = local_stack.register(alice.token, ready_png["data"], "image/png", filename="same-cat.png")
    # Then: no upload is needed
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["upload"] is None
    assert body["deduplicated"] is True
    assert body["file"]["id"] == ready_png["file"]["id"]


def pdf_bytes(size: int) -> bytes:
    """A PDF header padded with a comment to exactly `size` bytes."""
    head = b"%PDF-1.4\n%"
    return head + b"x" * (size - len(head))


def test_given_bytes_that_are_not_what_was_declared_when_checked_then_the_file_is_rejected_and_gone(
    local_stack, alice
):
    # Given: a PNG is declared (its size, no checksum)...
    declared = png_bytes(40, 30)
    registered = local_stack.register(
        alice.token, declared, "image/png", filename="pdf-bytes.png", declare_sha256=False
    )
    assert registered.status_code == 201, registered.text
    body = registered.json()
    # ...but a PDF of the same size is sent (nothing S3 checks tells them apart)
    put = local_stack.put(body["upload"], pdf_bytes(len(declared)))
    assert put.status_code == 200, put.text
    # When
    file = local_stack.wait_for_file(alice.token, body["file"]["id"])
    # Then: rejected with a reason a client can show, and the object deleted
    assert file["status"] == "rejected"
    assert file["rejection"]["code"] == "type_mismatch"
    assert file["rejection"]["message"]
    assert "url" not in file
    # (the trigger deletes the bytes right after it marks the file rejected)
    key = f"files/{alice.sub}/{file['id']}"
    wait_for(lambda: not local_stack.object_exists(key), what=f"{key} to be deleted")


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [("more-bytes-than-signed", 403, "SignatureDoesNotMatch"), ("other-bytes-same-size", 400, "BadDigest")],
)
def test_given_bytes_that_break_what_the_url_signed_when_put_then_s3_refuses_them_and_nothing_is_stored(
    local_stack, alice, case, status, code
):
    # Given: a URL signed for a PNG's length and checksum
    declared = png_bytes(40, 30)
    registered = local_stack.register(alice.token, declared, "image/png", filename=f"{case}.png")
    assert registered.status_code == 201, registered.text
    body = registered.json()
    sent = declared + b"\0" * 100 if code == "SignatureDoesNotMatch" else pdf_bytes(len(declared))
    # When: other bytes go to it
    put = local_stack.put(body["upload"], sent)
    # Then: refused as S3 refuses them, so no object arrives and the file stays pending
    assert put.status_code == status, put.text
    assert f"<Code>{code}</Code>" in put.text
    assert not local_stack.object_exists(f"files/{alice.sub}/{body['file']['id']}")
    assert local_stack.api("GET", f"/files/{body['file']['id']}", alice.token).json()["file"]["status"] == (
        "pending"
    )
