"""Each attachment in the form the model takes (MODEL_CAPABILITIES), and a thread that
survives an attachment the model refuses: the generate function on moto, answered by
the built-in fake model over HTTP, told to refuse `file` parts (as vLLM does) or images
(as a text-only model does)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from agentfiles.models.files import TEXT
from agentfiles.settings import get_settings
from harness import samples, stored_files
from harness.calls import count_calls
from harness.stored_files import DEFAULT_GEOMETRY

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MODEL = "gpt-4o-mini"  # the default model of the settings, which the fake answers as any


def _setting(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def _capabilities(monkeypatch, **capability: bool) -> None:
    _setting(monkeypatch, "MODEL_CAPABILITIES", json.dumps({"*": capability}))


def _ask(aws, content, thread=None, **extra):
    thread = thread or aws.new_thread()
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content, **extra})
    assert reply.status == 201, reply.body
    return thread, reply.body["message"]["id"], reply.body["reply"]["id"]


def _reply(aws, thread, reply_id):
    return aws.call_api("GET", f"/threads/{thread}/messages/{reply_id}").body["message"]


def _sent_last(call) -> list[dict]:
    """The content parts of the last user message of a model call."""
    return call["sent"][-1]["content"]


def _texts(call) -> list[str]:
    return [
        p["text"]
        for m in call["sent"]
        if isinstance(m["content"], list)
        for p in m["content"]
        if p["type"] == "text"
    ]


def _types(call) -> list[str]:
    return [p["type"] for m in call["sent"] if isinstance(m["content"], list) for p in m["content"]]


def _receipt(aws, *, derived: bool = True):
    """A real JPEG, a scanned receipt of 827x1169, as a ready file."""
    return stored_files.stored_file(
        aws,
        stored_files.fixture("documents/sources/receipt.jpg"),
        "image/jpeg",
        "receipt.jpg",
        derived=derived,
    )


def _message_row(aws, thread, message_id):
    from agentfiles.data.table import from_item

    item = aws.dynamodb.get_item(
        TableName=aws.resources.table_name,
        Key={"pk": {"S": f"OWNER#alice#THREAD#{thread}"}, "sk": {"S": f"MSG#{message_id}"}},
        ConsistentRead=True,
    )["Item"]
    return from_item(item)


# ---- files: false ---------------------------------------------------------------------


def test_a_model_that_cannot_read_files_gets_a_pdfs_extracted_text_read_from_its_derived_object(
    worker, model, monkeypatch
):
    # Given a model that reads no file parts (and would refuse one, as vLLM does), and a
    # pdfTeX PDF whose text the upload check extracted
    _capabilities(monkeypatch, images=True, files=False)
    model.configure(refuse=["file"])
    report = stored_files.document(worker, "report.pdf", "application/pdf")
    thread, _, reply_id = _ask(
        worker, [{"type": "text", "text": "summarise"}, {"type": "file", "fileId": report.id}]
    )
    # When the reply is made
    with count_calls() as calls:
        assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then it succeeds in one call that carried the text, not a file part
    assert _reply(worker, thread, reply_id)["status"] == "success"
    assert len(model.calls) == 1 and "file" not in _types(model.calls[0])
    text = _sent_last(model.calls[0])[1]["text"]
    assert text.startswith("Attached file report.pdf (12 pages):\n[page 1]\n")
    assert "Every message holds one reference on each file it uses." in text
    # And only the extracted text was read, never the original
    assert calls.read_keys() == [report.derived[TEXT].key]
    assert calls.bytes_read == report.derived[TEXT].size


def test_a_documents_text_is_capped_and_the_model_told_where_it_was_cut(worker, model, monkeypatch):
    # Given a cap of 600 bytes of text per attachment and a 12-page PDF's text
    _capabilities(monkeypatch, images=True, files=False)
    _setting(monkeypatch, "TEXT_ATTACHMENT_MAX_BYTES", "600")
    report = stored_files.document(worker, "report.pdf", "application/pdf")
    assert report.derived[TEXT].size > 600
    thread, _, reply_id = _ask(worker, [{"type": "file", "fileId": report.id}])
    # When the reply is made
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the model got at most 600 bytes, ending in a note naming what it got
    text = _sent_last(model.calls[0])[0]["text"]
    assert len(text.encode()) <= 600
    assert re.search(r"\n\[\.\.\. truncated: page 1 of 12, the first \d+ of \d+ bytes\]$", text)
    # And one ranged GET read the cap and the stored text's header, no more
    [read] = calls.reads
    assert read.range == "bytes=0-855" and read.bytes == 856
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_scanned_pdf_is_named_as_having_no_text_layer_to_a_model_that_cannot_read_files(
    worker, model, monkeypatch
):
    # Given a PDF that is one scanned page, for a model without file parts
    _capabilities(monkeypatch, images=True, files=False)
    model.configure(refuse=["file"])
    scan = stored_files.document(worker, "scan.pdf", "application/pdf")
    thread, _, reply_id = _ask(worker, [{"type": "file", "fileId": scan.id}])
    # When the reply is made / Then the model is told what it is, and the reply succeeds
    worker.deliver("generations")
    assert _sent_last(model.calls[0]) == [{"type": "text", "text": "[scan.pdf: scanned PDF, no text layer]"}]
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_pdf_from_before_text_extraction_is_named_to_a_model_that_cannot_read_files(
    worker, model, monkeypatch
):
    # Given a PDF with no extracted text (stored before extraction existed)
    _capabilities(monkeypatch, images=True, files=False)
    old = stored_files.document(worker, "report.pdf", "application/pdf", derived=False)
    thread, _, reply_id = _ask(worker, [{"type": "file", "fileId": old.id}])
    # When the reply is made
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the model is told why it gets nothing, nothing is read, and the reply succeeds
    assert _sent_last(model.calls[0]) == [
        {
            "type": "text",
            "text": "[file report.pdf: this model cannot read PDF files, and no text was extracted from it]",
        }
    ]
    assert calls.reads == []
    assert _reply(worker, thread, reply_id)["status"] == "success"


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        ("letter.docx", DOCX, "Attached file letter.docx:\n"),
        ("budget.xlsx", XLSX, "Attached file budget.xlsx (2 sheets):\n[sheet 1: Budget]\n"),
    ],
)
def test_office_files_always_go_as_their_text_even_to_a_model_that_reads_files(
    worker, model, name, media_type, expected
):
    # Given a Word or Excel file made by LibreOffice, for a model that reads file parts
    office = stored_files.document(worker, name, media_type)
    thread, _, reply_id = _ask(worker, [{"type": "file", "fileId": office.id}])
    # When the reply is made / Then the model gets its text
    worker.deliver("generations")
    [part] = _sent_last(model.calls[0])
    assert part["type"] == "text" and part["text"].startswith(expected)
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_model_that_reads_files_gets_the_pdf_being_asked_about_and_its_text_in_later_turns(worker, model):
    # Given a PDF with its extracted text, asked about in a thread's first message
    report = stored_files.document(worker, "report.pdf", "application/pdf")
    thread, _, _ = _ask(worker, [{"type": "text", "text": "read"}, {"type": "file", "fileId": report.id}])
    with count_calls() as first:
        worker.deliver("generations")
    # When a later text-only message is answered
    _ask(worker, "and the second page?", thread)
    with count_calls() as later:
        worker.deliver("generations")
    # Then the first reply got the PDF itself, as a file part, read once
    assert 'file 1: PDF "report.pdf" with 12 page(s)' in model.calls[0]["reply"]
    assert first.read_keys() == [report.s3_key]
    # And the later one its text, from the derived object: the original is not read again
    assert "file" not in _types(model.calls[1])
    assert any(t.startswith("Attached file report.pdf (12 pages):") for t in _texts(model.calls[1]))
    assert later.read_keys() == [report.derived[TEXT].key]


def test_a_scan_keeps_going_as_a_file_part_in_later_turns_to_a_model_that_reads_files(worker, model):
    # Given a scanned PDF (its text says only that it has none), asked about first
    scan = stored_files.document(worker, "scan.pdf", "application/pdf")
    thread, _, _ = _ask(worker, [{"type": "file", "fileId": scan.id}])
    worker.deliver("generations")
    # When a later message is answered
    _ask(worker, "what was the total?", thread)
    with count_calls() as later:
        worker.deliver("generations")
    # Then the scan went again as its pages, told from its small stored text
    assert 'file 1: PDF "scan.pdf" with 1 page(s)' in model.calls[1]["reply"]
    assert later.read_keys() == [scan.derived[TEXT].key, scan.s3_key]


# ---- images ----------------------------------------------------------------------------


def test_a_model_that_cannot_see_images_gets_a_placeholder_and_the_reply_succeeds(worker, model, monkeypatch):
    # Given a model that cannot see images (and would refuse one), and a real JPEG
    _capabilities(monkeypatch, images=False, files=True)
    model.configure(refuse=["image"])
    receipt = _receipt(worker)
    thread, _, reply_id = _ask(
        worker, [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": receipt.id}]
    )
    # When the reply is made
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the image was named, not sent nor read, and the reply is a success that says so
    assert _sent_last(model.calls[0])[1] == {
        "type": "text",
        "text": "[image receipt.jpg: this model cannot see images]",
    }
    assert calls.reads == [] and len(model.calls) == 1
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "success"
    assert "this model cannot see images" in reply["content"][0]["text"]


def test_inline_image_data_and_external_image_urls_are_named_to_a_model_that_cannot_see(
    worker, model, monkeypatch
):
    # Given a model without images, and a message with an inline PNG and an image URL
    _capabilities(monkeypatch, images=False, files=True)
    model.configure(refuse=["image"])
    data = base64.b64encode(samples.png(5, 4)).decode()
    thread, _, reply_id = _ask(
        worker,
        [
            {"type": "image", "data": data, "mediaType": "image/png"},
            {"type": "image", "url": "https://example.com/cat.png"},
        ],
    )
    # When the reply is made / Then neither was sent, each was named, and it succeeded
    worker.deliver("generations")
    assert [p["text"] for p in _sent_last(model.calls[0])] == [
        "[image inline: this model cannot see images]",
        "[image https://example.com/cat.png: this model cannot see images]",
    ]
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_in_inline_mode_the_model_gets_the_images_model_copy_and_the_original_is_not_read(worker, model):
    # Given a real 827x1169 JPEG with its copy for the default geometry (768 short side)
    receipt = _receipt(worker)
    copy = receipt.derived[DEFAULT_GEOMETRY.derived_name]
    thread, _, reply_id = _ask(worker, [{"type": "image", "fileId": receipt.id}])
    # When the reply is made
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the model saw the copy's pixels, read once, and never the original
    assert "image 1: JPEG 768x1086" in model.calls[0]["reply"]
    assert calls.read_keys() == [copy.key] and calls.bytes_read == copy.size
    assert _reply(worker, thread, reply_id)["status"] == "success"


def test_a_model_of_another_geometry_gets_its_own_copy(worker, model, monkeypatch):
    # Given a second model whose images are fitted to 512 on the short side, so that the
    # check made a copy of the image for each geometry
    _setting(monkeypatch, "MODELS", "small-model")
    _setting(
        monkeypatch,
        "MODEL_CAPABILITIES",
        json.dumps({"small-model": {"maxImageSide": 1024, "maxImageShortSide": 512}}),
    )
    receipt = _receipt(worker)
    assert set(receipt.derived) == {"thumbnail", "model-2048x768", "model-1024x512"}
    # When each model is asked about it
    _ask(worker, [{"type": "image", "fileId": receipt.id}], model="small-model")
    worker.deliver("generations")
    _ask(worker, [{"type": "image", "fileId": receipt.id}])
    worker.deliver("generations")
    # Then each saw the copy of its own geometry
    assert "image 1: JPEG 512x724" in model.calls[0]["reply"]
    assert "image 1: JPEG 768x1086" in model.calls[1]["reply"]


def test_an_image_from_before_model_copies_goes_as_its_original(worker, model):
    # Given a phone photo stored on its side (EXIF orientation 6), once as a file from
    # before model copies, once with the copy the check makes
    sideways = stored_files.fixture("images/sideways.jpg")
    old = stored_files.stored_file(worker, sideways, "image/jpeg", "old.jpg", derived=False)
    new = stored_files.stored_file(worker, sideways, "image/jpeg", "new.jpg")
    # When each is asked about
    with count_calls() as calls:
        for file in (old, new):
            _ask(worker, [{"type": "image", "fileId": file.id}])
            worker.deliver("generations")
    # Then the old one went as its original, pixels on their side; the new one as its
    # copy, upright; each read once
    assert "image 1: JPEG 600x450" in model.calls[0]["reply"]
    assert "image 1: JPEG 450x600" in model.calls[1]["reply"]
    assert calls.read_keys() == [old.s3_key, new.derived[DEFAULT_GEOMETRY.derived_name].key]


@pytest.mark.parametrize("mode", ["presigned", "public"])
def test_every_url_mode_points_the_model_at_the_copy(worker, model, monkeypatch, mode):
    # Given URL_MODE presigned or public, and an image with its model copy
    _setting(monkeypatch, "URL_MODE", mode)
    _setting(monkeypatch, "PUBLIC_BASE_URL", "https://cdn.example.com")
    receipt = _receipt(worker)
    copy_key = receipt.derived[DEFAULT_GEOMETRY.derived_name].key
    _ask(worker, [{"type": "image", "fileId": receipt.id}])
    # When the reply is made (the model here cannot fetch either URL, so the reply fails)
    with count_calls() as calls:
        worker.deliver("generations")
    # Then the URL the model was given is the copy's, and the worker read nothing
    url = _sent_last(model.calls[0])[0]["image_url"]["url"]
    if mode == "public":
        assert url == f"https://cdn.example.com/{copy_key}"
    else:
        assert f"/{copy_key}?" in url and "X-Amz-Signature=" in url
    assert calls.reads == []


# ---- refused attachments ------------------------------------------------------------


def test_a_refused_file_part_is_retried_at_once_without_it_and_left_out_of_later_calls(worker, model):
    # Given a model said to read files that refuses `file` parts as vLLM does
    model.configure(refuse=["file"])
    report = stored_files.document(worker, "report.pdf", "application/pdf", derived=False)
    thread, message_id, reply_id = _ask(
        worker, [{"type": "text", "text": "summarise"}, {"type": "file", "fileId": report.id}]
    )
    # When the reply is made
    assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the first call was refused, the same reply was tried again without the PDF,
    # and it succeeded, the PDF named as omitted
    assert [c["status"] for c in model.calls] == [400, 200]
    assert _sent_last(model.calls[1])[1] == {
        "type": "text",
        "text": "[file 'report.pdf' omitted: this model refused it]",
    }
    assert _reply(worker, thread, reply_id)["status"] == "success"
    # And the refusal is remembered on the message, for this model
    assert _message_row(worker, thread, message_id)["refusedParts"] == [f"1@{MODEL}"]
    # When the next text-only message is answered
    _, _, next_reply = _ask(worker, "thanks", thread)
    worker.deliver("generations")
    # Then one call answers it, without the PDF
    assert [c["status"] for c in model.calls] == [400, 200, 200]
    assert "file" not in _types(model.calls[2])
    assert "[file 'report.pdf' omitted: this model refused it]" in _texts(model.calls[2])
    assert _reply(worker, thread, next_reply)["status"] == "success"


def test_a_reply_refused_twice_fails_attachment_refused_and_the_next_text_message_is_answered(worker, model):
    # Given a text-only server (no file parts, no images) and a message with a PDF and an image
    model.configure(refuse=["file", "image"])
    report = stored_files.document(worker, "report.pdf", "application/pdf", derived=False)
    receipt = _receipt(worker)
    thread, message_id, reply_id = _ask(
        worker,
        [
            {"type": "text", "text": "compare"},
            {"type": "file", "fileId": report.id},
            {"type": "image", "fileId": receipt.id},
        ],
    )
    # When the reply is made
    with count_calls() as calls:
        assert worker.deliver("generations") == {"batchItemFailures": []}
    # Then the file part was refused, the retry without it refused the image, and the
    # reply failed at once (no SQS retry) with attachment_refused naming the image
    assert [c["status"] for c in model.calls] == [400, 400]
    # (the second try read nothing the first had read)
    assert sorted(calls.read_keys()) == sorted(
        [report.s3_key, receipt.derived[DEFAULT_GEOMETRY.derived_name].key]
    )
    reply = _reply(worker, thread, reply_id)
    assert reply["status"] == "failed" and reply["error"]["code"] == "attachment_refused"
    assert "image 'receipt.jpg'" in reply["error"]["message"]
    assert worker.deliver("generations") is None
    # And both are remembered as refused by this model
    assert sorted(_message_row(worker, thread, message_id)["refusedParts"]) == [f"1@{MODEL}", f"2@{MODEL}"]
    # When the next text-only message is answered
    _, _, next_reply = _ask(worker, "are you there?", thread)
    worker.deliver("generations")
    # Then it is, in one call, with both attachments named as omitted
    assert [c["status"] for c in model.calls] == [400, 400, 200]
    assert set(_types(model.calls[2])) == {"text"}
    texts = _texts(model.calls[2])
    assert "[file 'report.pdf' omitted: this model refused it]" in texts
    assert "[image 'receipt.jpg' omitted: this model refused it]" in texts
    assert _reply(worker, thread, next_reply)["status"] == "success"


def test_a_part_refused_by_one_model_still_goes_to_another(worker, model, monkeypatch):
    # Given a PDF that the default model refused in a thread
    _setting(monkeypatch, "MODELS", "other-model")
    model.configure(refuse=["file"])
    report = stored_files.document(worker, "report.pdf", "application/pdf", derived=False)
    thread, _, _ = _ask(worker, [{"type": "file", "fileId": report.id}])
    worker.deliver("generations")
    # When the next message asks another model, which takes file parts
    model.configure(refuse=[])
    _ask(worker, "and you?", thread, model="other-model")
    worker.deliver("generations")
    # Then that model gets the PDF
    assert model.calls[-1]["model"] == "other-model" and "file" in _types(model.calls[-1])


def test_a_refusal_is_not_written_to_a_message_deleted_meanwhile(aws):
    # Given a message id that is not (or no longer) in the table
    from agentfiles.data import message_rows

    # When a refusal is remembered on it / Then nothing is written, and it says so
    assert (
        message_rows.mark_refused(
            "alice", "01M8XDS5PPYRCC9XV0QDKB9QZB", "01M8XDS5RMNR97EKDJNHTK1DXA", {"1@m"}
        )
        is False
    )
    assert aws.dynamodb.scan(TableName=aws.resources.table_name)["Count"] == 0
