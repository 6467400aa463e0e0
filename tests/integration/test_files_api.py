"""The files routes, through the API function, on moto."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest

from harness import samples


def test_registering_an_upload_returns_a_write_once_presigned_put_that_signs_type_length_and_checksum(aws):
    # Given a PNG a client wants to upload
    data = samples.png()
    # When it registers the upload with its sha256
    reply = aws.register(data, "image/png", filename="cat.png")
    # Then it gets a pending file and a PUT whose signature covers what it declared
    assert reply.status == 201
    file, upload = reply.body["file"], reply.body["upload"]
    assert file["status"] == "pending" and file["refcount"] == 0 and file["size"] == len(data)
    assert upload["method"] == "PUT"
    signed = parse_qs(urlparse(upload["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "content-type", "host", "x-amz-checksum-sha256", "if-none-match"} <= set(signed)
    assert upload["headers"]["Content-Type"] == "image/png"
    assert upload["headers"]["If-None-Match"] == "*"
    assert base64.b64decode(upload["headers"]["x-amz-checksum-sha256"]).hex() == samples.sha256(data)
    # And the key is made by the server from the owner and the file id, never the filename
    assert urlparse(upload["url"]).path.endswith(f"/alice/{file['id']}")


def test_upload_expiry_follows_the_setting(aws, monkeypatch):
    # Given upload URLs configured to live 2 minutes
    from agentfiles.settings import get_settings

    monkeypatch.setenv("UPLOAD_URL_TTL_SECONDS", "120")
    get_settings.cache_clear()
    # When an upload is registered
    reply = aws.call_api(
        "POST", "/files/uploads", json_body={"filename": "a.txt", "mediaType": "text/plain", "size": 3}
    )
    # Then the presigned URL expires in 120 seconds
    assert parse_qs(urlparse(reply.body["upload"]["url"]).query)["X-Amz-Expires"] == ["120"]


def test_an_uploaded_file_becomes_ready_and_reads_back_with_a_fresh_download_url(aws):
    # Given a PNG uploaded through the presigned flow
    data = samples.png()
    file = aws.upload(data, "image/png", filename="cat.png")
    # Then it is ready, with its verified checksum, and its URL downloads the same bytes
    assert file["status"] == "ready"
    assert file["sha256"] == samples.sha256(data)
    assert file["url"] and file["urlExpiresAt"]
    key = f"files/alice/{file['id']}"
    assert aws.s3.get_object(Bucket=aws.resources.bucket_name, Key=key)["Body"].read() == data


def test_a_text_download_url_asks_the_browser_to_save_it_under_its_filename(aws):
    # Given a ready text file
    file = aws.upload(b"notes\n", "text/plain", filename="notes 2026.txt")
    # Then its download URL sets Content-Disposition: attachment with the filename
    query = parse_qs(urlparse(file["url"]).query)
    assert query["response-content-disposition"][0].startswith('attachment; filename="notes 2026.txt"')


def test_an_image_download_url_opens_inline_as_its_checked_type(aws):
    file = aws.upload(samples.png(), "image/png", filename="cat.png")
    query = parse_qs(urlparse(file["url"]).query)
    assert query["response-content-disposition"][0].startswith('inline; filename="cat.png"')
    assert query["response-content-type"] == ["image/png"]


def test_registering_content_the_owner_already_has_ready_returns_that_file_without_an_upload(aws):
    # Given a ready file
    data = samples.png()
    first = aws.upload(data, "image/png", filename="one.png")
    # When the same owner registers the same content again
    reply = aws.register(data, "image/png", filename="two.png")
    # Then it gets that file back, no upload, and no new row
    assert reply.status == 200
    assert reply.body["deduplicated"] is True and reply.body["upload"] is None
    assert reply.body["file"]["id"] == first["id"]
    assert len(aws.call_api("GET", "/files").body["items"]) == 1


def test_a_dedup_hit_touches_the_file_so_the_vacuum_grace_period_restarts(aws):
    # Given a ready file last touched at some time
    data = samples.png()
    file = aws.upload(data, "image/png")
    before = aws.file_row("alice", file["id"])["lastTouchedAt"]
    # When the content is registered again
    aws.register(data, "image/png", filename="x.png")
    # Then lastTouchedAt moved forward
    assert aws.file_row("alice", file["id"])["lastTouchedAt"] >= before


def test_dedup_is_per_owner(aws):
    # Given alice has a ready file
    data = samples.png()
    aws.upload(data, "image/png")
    # When bob registers the same content
    reply = aws.register(data, "image/png", sub="bob", filename="x.png")
    # Then bob uploads his own copy
    assert reply.status == 201 and reply.body["upload"] is not None


def test_another_owners_file_is_not_found(aws):
    file = aws.upload(samples.png(), "image/png")
    for method in ("GET", "DELETE"):
        reply = aws.call_api(method, f"/files/{file['id']}", sub="bob")
        assert reply.status == 404
        assert reply.body["error"]["code"] == "file_not_found"


def test_small_upload_is_stored_and_checked_at_once(aws):
    # Given a small text file in the body
    content = b"hello, world\n"
    reply = aws.call_api(
        "POST",
        "/files",
        json_body={
            "filename": "hello.txt",
            "mediaType": "text/plain",
            "data": base64.b64encode(content).decode(),
        },
    )
    # Then it is ready at once, with its object in S3
    assert reply.status == 201
    file = reply.body["file"]
    assert file["status"] == "ready" and file["sha256"] == samples.sha256(content) and file["url"]
    assert f"files/alice/{file['id']}" in aws.object_keys()


def test_small_upload_of_known_content_is_deduplicated(aws):
    data = base64.b64encode(samples.png()).decode()
    first = aws.call_api(
        "POST", "/files", json_body={"filename": "a.png", "mediaType": "image/png", "data": data}
    )
    second = aws.call_api(
        "POST", "/files", json_body={"filename": "b.png", "mediaType": "image/png", "data": data}
    )
    assert second.status == 200 and second.body["deduplicated"] is True
    assert second.body["file"]["id"] == first.body["file"]["id"]
    assert [key for key in aws.object_keys() if key.startswith("files/")] == [
        f"files/alice/{first.body['file']['id']}"
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filename": "a.png", "mediaType": "image/png", "data": "%%%not-base64%%%"}, 400, "invalid_base64"),
        (
            {"filename": "a.png", "mediaType": "image/png", "data": base64.b64encode(b"plain text").decode()},
            422,
            "type_mismatch",
        ),
        (
            {"filename": "a.exe", "mediaType": "application/x-msdownload", "data": "TVqQAAMAAAAEAAAA"},
            422,
            "media_type_not_allowed",
        ),
        ({"filename": "a.png", "mediaType": "image/png"}, 422, "validation_error"),
        (
            {"filename": "a.png", "mediaType": "image/png", "data": "AAAA", "extra": 1},
            422,
            "validation_error",
        ),
    ],
)
def test_small_upload_refuses_bad_input_with_a_typed_error_and_stores_nothing(aws, body, status, code):
    reply = aws.call_api("POST", "/files", json_body=body)
    assert reply.status == status
    assert reply.body["error"]["code"] == code and reply.body["error"]["message"]
    assert aws.object_keys() == set()
    assert aws.call_api("GET", "/files").body["items"] == []


def test_small_upload_over_the_limit_is_413(aws, monkeypatch):
    from agentfiles.settings import get_settings

    monkeypatch.setenv("SMALL_UPLOAD_MAX_BYTES", "1024")
    get_settings.cache_clear()
    data = base64.b64encode(b"a" * 2048).decode()
    reply = aws.call_api(
        "POST", "/files", json_body={"filename": "a.txt", "mediaType": "text/plain", "data": data}
    )
    assert reply.status == 413 and reply.body["error"]["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filename": "a.png", "mediaType": "image/png", "size": 0}, 422, "validation_error"),
        (
            {"filename": "a.png", "mediaType": "image/png", "size": 10, "sha256": "xyz"},
            422,
            "validation_error",
        ),
        ({"filename": "", "mediaType": "image/png", "size": 10}, 422, "validation_error"),
        ({"filename": "a\x00.png", "mediaType": "image/png", "size": 10}, 422, "validation_error"),
        (
            {"filename": "a.bin", "mediaType": "application/octet-stream", "size": 10},
            422,
            "media_type_not_allowed",
        ),
        ({"filename": "a.png", "mediaType": "image/png", "size": 10**12}, 413, "file_too_large"),
    ],
)
def test_registering_a_bad_upload_is_a_typed_4xx(aws, body, status, code):
    reply = aws.call_api("POST", "/files/uploads", json_body=body)
    assert reply.status == status, reply.body
    assert reply.body["error"]["code"] == code


def test_a_body_that_is_not_json_is_a_typed_4xx(aws):
    from agentfiles_local.events import LambdaContext, http_api_event
    from functions.api.handler import lambda_handler

    event = http_api_event(
        "POST",
        "/files/uploads",
        headers={"content-type": "application/json"},
        body="{not json",
        claims={"sub": "a"},
    )
    response = lambda_handler(event, LambdaContext("api", 29))
    assert 400 <= response["statusCode"] < 500
    assert '"error"' in response["body"]


def test_a_request_without_claims_is_401_with_the_authorizers_body(aws):
    reply = aws.call_api("GET", "/files", sub=None)
    assert reply.status == 401 and reply.body == {"message": "Unauthorized"}


def test_files_list_in_pages_newest_first(aws):
    # Given five small files
    ids = []
    for n in range(5):
        data = base64.b64encode(f"file {n}".encode()).decode()
        reply = aws.call_api(
            "POST", "/files", json_body={"filename": f"{n}.txt", "mediaType": "text/plain", "data": data}
        )
        ids.append(reply.body["file"]["id"])
    # When listed two at a time
    seen, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = aws.call_api("GET", "/files", query=query).body
        seen += [f["id"] for f in page["items"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    # Then every file comes back once, newest first
    assert seen == list(reversed(ids))


def test_a_forged_cursor_is_a_400_not_another_owners_rows(aws):
    forged = base64.urlsafe_b64encode(b'{"sk":"THREAD#x"}').decode().rstrip("=")
    reply = aws.call_api("GET", "/files", query={"cursor": forged})
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_cursor"
    reply = aws.call_api("GET", "/files", query={"cursor": "!!!"})
    assert reply.status == 400


def test_deleting_an_unreferenced_file_removes_object_hash_and_row(aws):
    # Given a ready file
    data = samples.png()
    file = aws.upload(data, "image/png")
    # When it is deleted
    assert aws.call_api("DELETE", f"/files/{file['id']}").status == 204
    # Then the object, the row and the dedup entry are gone
    assert aws.object_keys() == set()
    assert aws.call_api("GET", f"/files/{file['id']}").status == 404
    again = aws.register(data, "image/png", filename="x.png")
    assert again.status == 201
    # And deleting it twice is a 404
    assert aws.call_api("DELETE", f"/files/{file['id']}").status == 404


def test_a_json_body_sent_as_form_data_is_read_as_json(aws):
    # Given curl's default content type on a JSON body
    data = base64.b64encode(b"hi there").decode()
    body = {"filename": "a.txt", "mediaType": "text/plain", "data": data}
    # When it is posted
    reply = aws.call_api(
        "POST", "/files", json_body=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    # Then it is understood
    assert reply.status == 201
