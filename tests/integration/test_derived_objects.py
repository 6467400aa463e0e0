"""What the upload check makes from a file (a document's text and pages), recorded on its
row as it becomes ready, and deleted with the file on every path; objects that appear
for a file that is not pending are deleted at once. Real documents from
tests/fixtures/documents/, on moto."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from agentfiles.data import keys
from agentfiles.logic import vacuum
from agentfiles.media.documents import DOCX, PPTX, XLSX, read_document, stored_text
from agentfiles.models.files import TEXT, THUMBNAIL
from harness import samples
from harness.calls import count_calls

DOCUMENTS = Path(__file__).parents[1] / "fixtures" / "documents"
PDF = "application/pdf"
DAY_MS = 24 * 3600 * 1000


def _fixture(name: str) -> bytes:
    return (DOCUMENTS / name).read_bytes()


def _derived(aws, owner: str = "alice") -> set[str]:
    """Every object under derived/{owner}/, listed in the bucket itself."""
    response = aws.s3.list_objects_v2(
        Bucket=aws.resources.bucket_name, Prefix=keys.derived_key(owner, "", "")[:-1]
    )
    return {item["Key"] for item in response.get("Contents", [])}


def _register(aws, data: bytes, media_type: str, *, filename: str = "f", declare_sha: bool = True) -> dict:
    reply = aws.register(data, media_type, filename=filename, declare_sha=declare_sha)
    assert reply.status == 201, reply.body
    return reply.body["file"]


def _put(aws, file_id: str, data: bytes, media_type: str, owner: str = "alice") -> None:
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name,
        Key=keys.object_key(owner, file_id),
        Body=data,
        ContentType=media_type,
    )


def _usage(aws) -> dict:
    return aws.call_api("GET", "/usage").body


# ---- documents at the check -------------------------------------------------------------


def test_a_pdf_becomes_ready_with_its_text_stored_beside_it_and_its_pages_on_the_row(aws):
    # Given a 12-page pdfTeX report, uploaded through the presigned flow
    data = _fixture("report.pdf")
    # When the trigger checks it
    file = aws.upload(data, PDF, filename="report.pdf")
    # Then the file is ready, shows its pages, and its row records the stored text
    assert file["status"] == "ready" and file["pages"] == 12
    row = aws.file_row("alice", file["id"])
    text = row["derived"][TEXT]
    assert text["key"] == keys.derived_key("alice", file["id"], TEXT)
    stored = aws.s3.get_object(Bucket=aws.resources.bucket_name, Key=text["key"])
    body = stored["Body"].read()
    assert stored["ContentType"] == "text/plain; charset=utf-8"
    assert body == stored_text(read_document(data, PDF)) and text["size"] == len(body)
    assert "Every message holds one reference on each file it uses." in body.decode()


def test_a_document_without_a_declared_checksum_is_read_once_for_its_text_and_its_hash(aws):
    # Given a PDF registered without a checksum (S3 then reports none on HEAD)
    data = _fixture("report.pdf")
    file = _register(aws, data, PDF, declare_sha=False)
    _put(aws, file["id"], data, PDF)
    # When the trigger checks it
    with count_calls() as calls:
        aws.run_upload_trigger()
    # Then it made one GET of the whole object, hashed those bytes, and stored the text
    gets = [params for service, name, params in calls.calls if service == "s3" and name == "GetObject"]
    assert len(gets) == 1 and "Range" not in gets[0]["headers"]
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and row["sha256"] == samples.sha256(data)
    assert set(row["derived"]) == {TEXT}


@pytest.mark.parametrize(
    ("fixture", "media_type", "pages", "words"),
    [
        ("letter.docx", DOCX, None, "[body]"),
        ("budget.xlsx", XLSX, None, "[sheet 2: Totals]\nTotal cost\t212"),
        ("slides.pptx", PPTX, 3, "[slide 2]"),
    ],
)
def test_office_files_are_accepted_by_default_and_their_text_is_stored(
    aws, fixture, media_type, pages, words
):
    # Given a Word, Excel or PowerPoint file made by LibreOffice
    data = _fixture(fixture)
    # When it is uploaded and checked
    file = aws.upload(data, media_type, filename=fixture)
    # Then it is ready with its text beside it (and its slides counted as pages)
    assert file["status"] == "ready", file.get("rejection")
    assert file.get("pages") == pages
    key = aws.file_row("alice", file["id"])["derived"][TEXT]["key"]
    assert words in aws.s3.get_object(Bucket=aws.resources.bucket_name, Key=key)["Body"].read().decode()


def test_a_password_protected_pdf_is_rejected_as_encrypted_and_nothing_is_kept(aws):
    # Given a LibreOffice PDF with an open password
    file = aws.upload(_fixture("locked.pdf"), PDF)
    # Then it is rejected encrypted_pdf, with no object and no derived object left
    assert file["status"] == "rejected" and file["rejection"]["code"] == "encrypted_pdf"
    assert "password" in file["rejection"]["message"]
    assert aws.object_keys() == set()
    assert _usage(aws)["storage"]["bytes"] == 0


@pytest.mark.parametrize(
    ("fixture", "media_type"),
    [("truncated.pdf", PDF), ("letter.docx", XLSX), ("budget.xls", XLSX)],
    ids=["cut-short-pdf", "word-file-declared-as-excel", "excel-97-declared-as-xlsx"],
)
def test_a_document_that_does_not_read_is_rejected_unreadable(aws, fixture, media_type):
    # Given a PDF cut short, a Word file declared as a workbook, or an old binary workbook
    file = aws.upload(_fixture(fixture), media_type)
    # Then it is rejected unreadable_document (or as not what it claims) and nothing is kept
    assert file["status"] == "rejected"
    assert file["rejection"]["code"] in ("unreadable_document", "type_mismatch")
    if fixture != "budget.xls":
        assert file["rejection"]["code"] == "unreadable_document"
    assert aws.object_keys() == set()


def test_a_small_upload_of_a_document_is_stored_with_its_text(aws):
    # Given a Word file sent in one request (POST /files)
    data = _fixture("letter.docx")
    # When it is stored
    file = aws.small_file(data, DOCX)
    # Then it is ready at once with its text beside it, as an upload checked by the trigger
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and set(row["derived"]) == {TEXT}
    assert _derived(aws) == {keys.derived_key("alice", file["id"], TEXT)}
    # And the trigger, told of its object, leaves it as it is
    aws.run_upload_trigger()
    assert aws.file_row("alice", file["id"]) == row
    assert keys.object_key("alice", file["id"]) in aws.object_keys()


def test_a_small_upload_of_a_locked_pdf_is_refused_before_anything_is_stored(aws):
    # Given a password-protected PDF sent in one request
    import base64

    body = {
        "filename": "locked.pdf",
        "mediaType": PDF,
        "data": base64.b64encode(_fixture("locked.pdf")).decode(),
    }
    # When it is stored
    reply = aws.call_api("POST", "/files", json_body=body)
    # Then it is refused 422 encrypted_pdf and no object exists
    assert reply.status == 422 and reply.body["error"]["code"] == "encrypted_pdf"
    assert aws.object_keys() == set()


# ---- every delete path deletes what was made ------------------------------------------


def test_deleting_a_document_deletes_its_derived_text(aws):
    # Given a ready PDF with its text
    file = aws.upload(_fixture("report.pdf"), PDF)
    assert _derived(aws)
    # When its owner deletes it
    assert aws.call_api("DELETE", f"/files/{file['id']}").status == 204
    # Then neither the original nor anything under derived/alice/ is left
    assert aws.object_keys() == set() and _derived(aws) == set()


def test_the_vacuum_deletes_an_unreferenced_documents_derived_text(aws):
    # Given a ready PDF nothing references, untouched for two days
    file = aws.upload(_fixture("report.pdf"), PDF)
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key=keys.file_key("alice", file["id"]).dynamo,
        UpdateExpression="SET lastTouchedAt = lastTouchedAt - :shift",
        ExpressionAttributeValues={":shift": {"N": str(2 * DAY_MS)}},
    )
    # When the vacuum runs
    result = vacuum.run_vacuum(lambda: 10**9)
    # Then the file and its text are gone, and only the original's bytes were freed
    assert result.files_deleted == 1 and result.bytes_freed == file["size"]
    assert aws.object_keys() == set() and _derived(aws) == set()


def test_text_stored_by_a_check_that_stopped_before_its_row_is_deleted_with_the_file(aws, monkeypatch):
    # Given a check that stored a PDF's text and then stopped before marking it ready
    from agentfiles.logic import inspection

    data = _fixture("report.pdf")
    file = _register(aws, data, PDF)
    _put(aws, file["id"], data, PDF)

    class Stopped(Exception):
        pass

    def stopped(*args, **kwargs):
        raise Stopped

    monkeypatch.setattr(inspection.file_rows, "mark_ready", stopped)
    with pytest.raises(Stopped):
        inspection.inspect_upload(keys.object_key("alice", file["id"]))
    monkeypatch.undo()
    assert _derived(aws) and aws.file_row("alice", file["id"])["status"] == "pending"
    # When its owner deletes the pending file
    assert aws.call_api("DELETE", f"/files/{file['id']}").status == 204
    # Then no derived object is left, though no row ever recorded it
    assert aws.object_keys() == set() and _derived(aws) == set()


def test_a_document_purged_while_it_was_checked_leaves_no_derived_object(aws, monkeypatch):
    # Given a PDF deleted between the trigger's text extraction and its ready write
    from agentfiles.logic import files as file_logic
    from agentfiles.logic import inspection

    data = _fixture("report.pdf")
    file = _register(aws, data, PDF)
    _put(aws, file["id"], data, PDF)
    real_mark_ready = inspection.file_rows.mark_ready

    def purged_first(record, *args, **kwargs):
        file_logic.delete_file("alice", record.id)
        return real_mark_ready(record, *args, **kwargs)

    monkeypatch.setattr(inspection.file_rows, "mark_ready", purged_first)
    # When the trigger finishes its check
    aws.run_upload_trigger()
    # Then neither the row, nor the original, nor its text is left
    assert aws.file_row("alice", file["id"]) is None
    assert aws.object_keys() == set()


def test_an_orphan_under_a_files_key_takes_any_derived_object_of_that_key_with_it(aws):
    # Given a derived text and an original for a file id no row claims
    file_id = "01JDQ8ZK3M4N5P6Q7R8S9T0V1W"
    aws.drain("uploads")
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name, Key=keys.derived_key("alice", file_id, TEXT), Body=b"x"
    )
    aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=keys.object_key("alice", file_id), Body=b"x")
    # When the trigger sees the original
    aws.run_upload_trigger()
    # Then both are deleted
    assert aws.object_keys() == set()


# ---- objects for files that are not pending (issue: quota bypass, swapped objects) -------


def test_a_presigned_put_replayed_after_a_rejection_is_deleted_at_once_and_usage_stays_zero(aws):
    # Given an upload rejected for its size, its object deleted by the check
    data = b"0123456789" * 100
    reply = aws.register(data + b"extra", "text/plain")
    file = reply.body["file"]
    _put(aws, file["id"], data, "text/plain")
    aws.run_upload_trigger()
    assert aws.file_row("alice", file["id"])["status"] == "rejected"
    assert aws.object_keys() == set()
    # When the same key is written again (the same presigned PUT: its object is gone)
    _put(aws, file["id"], data + b"extra", "text/plain")
    aws.run_upload_trigger()
    # Then the object is deleted at once, and the owner still stores nothing
    assert aws.object_keys() == set()
    assert _usage(aws)["storage"]["bytes"] == 0
    assert aws.file_row("alice", file["id"])["status"] == "rejected"


def test_a_ready_files_object_overwritten_with_other_bytes_is_deleted(aws):
    # Given a ready text file
    file = aws.upload(b"checked text\n", "text/plain")
    # When other bytes are written over its object
    _put(aws, file["id"], b"<script>alert(1)</script>", "text/plain")
    aws.run_upload_trigger()
    # Then the replacement is deleted: only the checked object may stand at the key
    assert keys.object_key("alice", file["id"]) not in aws.object_keys()
    assert aws.file_row("alice", file["id"])["status"] == "ready"


def test_a_ready_files_object_rewritten_as_html_is_deleted(aws):
    # Given a ready text file
    data = b"<b>hello</b>\n"
    file = aws.upload(data, "text/plain")
    # When the same bytes are written again with Content-Type text/html (same ETag)
    _put(aws, file["id"], data, "text/html")
    aws.run_upload_trigger()
    # Then the object is deleted: its type is not the one checked
    assert keys.object_key("alice", file["id"]) not in aws.object_keys()


def test_the_notification_of_a_ready_files_own_object_leaves_it(aws):
    # Given a ready file whose notification arrives again (SQS delivers at least once)
    data = samples.png()
    file = _register(aws, data, "image/png")
    _put(aws, file["id"], data, "image/png")
    messages = aws.drain("uploads")
    from agentfiles_local.events import LambdaContext
    from functions.upload_trigger.handler import lambda_handler

    event = aws.sqs_event_for("uploads", messages)
    lambda_handler(event, LambdaContext("upload_trigger", 60))
    # When it is delivered again
    lambda_handler(event, LambdaContext("upload_trigger", 60))
    # Then the checked object stays
    assert keys.object_key("alice", file["id"]) in aws.object_keys()
    assert aws.file_row("alice", file["id"])["status"] == "ready"


# ---- what a read shows -----------------------------------------------------------------


def test_get_file_shows_pages_and_a_download_url_pinned_to_the_checked_type(aws):
    # Given a ready PDF with a name outside ASCII
    file = aws.upload(_fixture("report.pdf"), PDF, filename="résumé 2026.pdf")
    # When it is read
    shown = aws.call_api("GET", f"/files/{file['id']}").body["file"]
    # Then it shows its pages, and its URL serves it as application/pdf, inline, under its
    # exact name (RFC 6266: an ASCII fallback and the UTF-8 form); a bidi control that would
    # disguise a name is refused at registration (see the filename rule)
    assert shown["pages"] == 12 and "thumbnailUrl" not in shown
    query = parse_qs(urlparse(shown["url"]).query)
    assert query["response-content-type"] == [PDF]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith('inline; filename="r?sum? 2026.pdf"')
    assert disposition.endswith("filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf")


@pytest.mark.parametrize(
    ("media_type", "data", "served"),
    [
        ("text/plain", b"notes\n", "text/plain; charset=utf-8"),
        ("application/json", b"{}", "application/json; charset=utf-8"),
        (DOCX, _fixture("letter.docx"), DOCX),
    ],
)
def test_anything_but_an_image_or_a_pdf_downloads_as_an_attachment_of_its_checked_type(
    aws, media_type, data, served
):
    # Given a ready file that is not an image or a PDF
    file = aws.upload(data, media_type, filename="a.bin")
    # Then its URL pins the checked type and asks the browser to save it
    query = parse_qs(urlparse(file["url"]).query)
    assert query["response-content-type"] == [served]
    assert query["response-content-disposition"][0].startswith('attachment; filename="a.bin"')


# ---- images at the check -----------------------------------------------------------------

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
MODEL_COPY = "model-2048x768"  # the default geometry: fit 2048 x 2048, then 768 on the short side


def _image(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def _object(aws, key: str) -> dict:
    return aws.s3.get_object(Bucket=aws.resources.bucket_name, Key=key)


def test_an_iphone_heic_is_accepted_and_gets_an_upright_model_copy_and_a_thumbnail(aws):
    # Given a 12 MP portrait HEIC from an iPhone, uploaded as the phone names it
    from PIL import Image

    data = _image("iphone-arrow.heic")
    # When it is uploaded and checked
    file = aws.upload(data, "image/heic", filename="IMG_0001.HEIC")
    # Then it is ready with its upright size, one copy for the default geometry and a
    # thumbnail, each stored under derived/ and recorded on the row
    assert file["status"] == "ready", file.get("rejection")
    assert (file["width"], file["height"]) == (3024, 4032)
    row = aws.file_row("alice", file["id"])
    assert set(row["derived"]) == {MODEL_COPY, THUMBNAIL}
    assert _derived(aws) == {keys.derived_key("alice", file["id"], name) for name in (MODEL_COPY, THUMBNAIL)}
    copy = row["derived"][MODEL_COPY]
    assert (copy["width"], copy["height"]) == (768, 1024) and copy["mediaType"] == "image/jpeg"
    body = _object(aws, copy["key"])["Body"].read()
    assert len(body) == copy["size"] and len(body) < 0.5 * len(data)
    with Image.open(io.BytesIO(body)) as opened:
        assert opened.size == (768, 1024) and not opened.getexif()
    thumbnail = row["derived"][THUMBNAIL]
    assert max(thumbnail["width"], thumbnail["height"]) <= 256
    # And the derived objects count in no quota: the owner stores the original's bytes
    assert _usage(aws)["storage"]["bytes"] == len(data)


def test_a_sideways_jpeg_reports_its_upright_size_and_its_thumbnail_url_serves_the_thumbnail(aws):
    # Given a JPEG stored 600 x 450 on its side with EXIF orientation 6
    file = aws.upload(_image("sideways.jpg"), "image/jpeg", filename="photo.jpg")
    # When it is read
    shown = aws.call_api("GET", f"/files/{file['id']}").body["file"]
    # Then it shows its upright size, and a thumbnail URL minted for the thumbnail object
    assert (shown["width"], shown["height"]) == (450, 600)
    thumbnail_query = parse_qs(urlparse(shown["thumbnailUrl"]).query)
    assert urlparse(shown["thumbnailUrl"]).path.endswith(keys.derived_key("alice", file["id"], THUMBNAIL))
    assert thumbnail_query["response-content-type"] == [
        aws.file_row("alice", file["id"])["derived"][THUMBNAIL]["mediaType"]
    ]
    # And the original downloads inline as the checked type
    query = parse_qs(urlparse(shown["url"]).query)
    assert query["response-content-type"] == ["image/jpeg"]
    assert query["response-content-disposition"][0].startswith('inline; filename="photo.jpg"')


def test_an_image_part_read_back_in_a_message_carries_its_thumbnail_url_beside_the_original(aws):
    # Given a message that attaches a checked photo
    file = aws.upload(_image("sideways.jpg"), "image/jpeg", filename="photo.jpg")
    thread = aws.call_api("POST", "/threads", json_body={}).body["thread"]["id"]
    content = [{"type": "text", "text": "look"}, {"type": "image", "fileId": file["id"]}]
    aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content, "generate": False})
    # When the thread's messages are read
    (message,) = aws.call_api("GET", f"/threads/{thread}/messages").body["items"]
    # Then the image part links the original and the thumbnail, each minted for its own object
    part = message["content"][1]
    assert urlparse(part["url"]).path.endswith(aws.file_row("alice", file["id"])["s3Key"])
    assert urlparse(part["thumbnailUrl"]).path.endswith(keys.derived_key("alice", file["id"], THUMBNAIL))
    # And the text part carries neither
    assert set(message["content"][0]) == {"type", "text"}


@pytest.mark.parametrize(
    ("fixture", "media_type", "code"),
    [("truncated.jpg", "image/jpeg", "unreadable_image"), ("bomb.png", "image/png", "image_too_large")],
    ids=["truncated-jpeg", "decompression-bomb"],
)
def test_an_image_that_does_not_decode_or_is_too_large_is_rejected_and_nothing_is_kept(
    aws, fixture, media_type, code
):
    # Given the first 20 KB of a photo, or a 429-byte PNG declaring 30000 x 30000 pixels
    file = aws.upload(_image(fixture), media_type)
    # Then it is rejected with a reason a person can read, and no object is left
    assert file["status"] == "rejected" and file["rejection"]["code"] == code
    assert file["rejection"]["message"].startswith(f"{code}: ")
    assert aws.object_keys() == set()


def test_the_pixel_limit_is_the_image_max_pixels_setting(aws, monkeypatch):
    # Given a pixel limit below the HEIC's 12 MP
    from agentfiles.settings import get_settings

    monkeypatch.setenv("IMAGE_MAX_PIXELS", "10000000")
    get_settings.cache_clear()
    # When it is uploaded
    file = aws.upload(_image("iphone-arrow.heic"), "image/heic")
    # Then it is refused before it is decoded
    assert file["rejection"]["code"] == "image_too_large"


def test_each_configured_geometry_gets_its_own_copy_once(aws, monkeypatch):
    # Given two allowed models that see images at different geometries
    from agentfiles.settings import get_settings

    monkeypatch.setenv("MODELS", "small-vision")
    monkeypatch.setenv(
        "MODEL_CAPABILITIES", '{"small-vision": {"maxImageSide": 512, "maxImageShortSide": null}}'
    )
    get_settings.cache_clear()
    # When a photo is uploaded
    file = aws.upload(_image("camera-gps.jpg"), "image/jpeg")
    # Then it has one copy per geometry, and the thumbnail
    assert set(aws.file_row("alice", file["id"])["derived"]) == {MODEL_COPY, "model-512x0", THUMBNAIL}


def test_deleting_an_image_deletes_its_copies_and_thumbnail(aws):
    # Given a ready photo with its model copy and thumbnail
    file = aws.upload(_image("camera-gps.jpg"), "image/jpeg")
    assert len(_derived(aws)) == 2
    # When its owner deletes it
    assert aws.call_api("DELETE", f"/files/{file['id']}").status == 204
    # Then nothing under derived/alice/ is left
    assert aws.object_keys() == set() and _derived(aws) == set()


def test_a_small_image_upload_gets_its_copies_at_once(aws):
    # Given a PNG with transparency sent in one request
    file = aws.small_file(_image("logo-alpha.png"), "image/png")
    # Then it is ready with its size and thumbnail, and a PNG copy (transparency kept)
    assert (file["width"], file["height"]) == (240, 120) and file["thumbnailUrl"]
    row = aws.file_row("alice", file["id"])
    assert row["derived"][MODEL_COPY]["mediaType"] == "image/png"
