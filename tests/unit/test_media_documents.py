"""Documents as text, on real files made by real tools (`tests/fixtures/documents/`): each
PDF page, Word paragraph and table row, Excel sheet and slide in order; locked, broken
and bomb-shaped files refused with their codes; and the text a model gets, capped with
what it leaves out named."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentfiles.media import documents
from agentfiles.media.documents import (
    DOCX,
    IMAGE_ONLY,
    PDF,
    PPTX,
    STORED_HEADER_MAX_BYTES,
    XLSX,
    DocumentLimits,
    DocumentTooLarge,
    EncryptedPdf,
    ExtractedDocument,
    Section,
    UnreadableDocument,
    read_document,
    render_attachment,
    stored_prefix_bytes,
    stored_text,
)
from harness.imports import run_probe
from tests.fixtures.documents import make_bomb

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
MIB = 1024 * 1024

# The sentence each page of report.pdf opens its section with.
REPORT_SENTENCES = [
    "Every message holds one reference on each file it uses.",
    "The bytes of an upload never pass through a function.",
    "A file is ready only when its check has passed.",
    "Each model reads what it can, and the rest is sent as text.",
    "The newest attachments are sent first.",
    "A reply streams as small rows that a client can resume.",
    "A thread keeps its messages in the order they were written.",
    "Every key begins with the owner it belongs to.",
    "What a user may store is bounded in bytes and in files.",
    "The vacuum visits only the files whose count is zero.",
    "An export is one archive of threads, messages and files.",
    "An erased account leaves no row and no object behind.",
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def flat(text: str) -> str:
    return " ".join(text.split())


def peak_bytes(call) -> int:
    """The most memory Python held while `call` ran (what inflating would have to hold)."""
    tracemalloc.start()
    try:
        call()
    except Exception:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# -------------------------------------------------------------------------------------- PDF


def test_a_pdflatex_pdf_is_read_page_by_page():
    # Given a twelve-page report typeset by pdfLaTeX
    # When it is read
    document = read_document(fixture("report.pdf"), PDF)
    # Then there is one text per page, in order, each with its own sentence and no other's
    assert (document.pages, document.count, document.complete, document.scanned) == (12, 12, True, False)
    assert [section.marker for section in document.sections] == [f"page {n}" for n in range(1, 13)]
    for number, section in enumerate(document.sections):
        assert REPORT_SENTENCES[number] in flat(section.text)
        assert not any(s in flat(section.text) for i, s in enumerate(REPORT_SENTENCES) if i != number)
    assert flat(document.sections[0].text).startswith(
        "Files in Chat Threads The agentfiles authors 1 References"
    )


@pytest.mark.parametrize("name", ["locked.pdf", "locked-aes.pdf"])
def test_a_pdf_that_needs_a_password_to_open_is_refused_as_encrypted(name):
    # Given a PDF with an open password (LibreOffice's RC4, or AES-256 by qpdf)
    # When it is read / Then it is refused as encrypted_pdf, saying it is password-protected
    with pytest.raises(EncryptedPdf) as refused:
        read_document(fixture(name), PDF)
    assert refused.value.code == "encrypted_pdf"
    assert "password-protected" in refused.value.message


@pytest.mark.parametrize("name", ["permissions-only.pdf", "permissions-only-aes.pdf"])
def test_a_pdf_encrypted_with_an_empty_user_password_is_read(name):
    # Given a PDF encrypted for permissions only: anyone may open it without a password
    # When it is read / Then its text comes out as from any other PDF
    document = read_document(fixture(name), PDF)
    assert document.pages == 1
    assert "Storage review" in document.sections[0].text
    assert "Research 1200 48.5" in flat(document.sections[0].text)


def test_a_scanned_pdf_is_recognised_as_such():
    # Given a PDF whose only page is a JPEG (img2pdf), with no text layer
    document = read_document(fixture("scan.pdf"), PDF)
    # Then its page is marked image only, the document a scan, and a model is told so
    assert document.scanned
    assert document.sections == (Section("page 1", "", IMAGE_ONLY),)
    assert render_attachment("receipt.pdf", stored_text(document), 10_000) == (
        "[receipt.pdf: scanned PDF, no text layer]"
    )


@pytest.mark.parametrize("name", ["truncated.pdf", "letter.docx"])
def test_a_pdf_that_does_not_parse_is_unreadable(name):
    # Given the first 20 kB of a PDF, or bytes that are no PDF at all
    # When read as a PDF / Then it is refused as unreadable_document
    with pytest.raises(UnreadableDocument) as refused:
        read_document(fixture(name), PDF)
    assert refused.value.code == "unreadable_document"
    assert "could not be read" in refused.value.message


def test_reading_a_pdf_stops_at_its_time_bound_and_says_so():
    # Given no time at all to read a twelve-page PDF
    document = read_document(fixture("report.pdf"), PDF, DocumentLimits(max_seconds=0))
    # Then its first page is read, the rest is not, and the text says it is incomplete
    assert (len(document.sections), document.count, document.complete) == (1, 12, False)
    rendered = render_attachment("report.pdf", stored_text(document), 100_000)
    assert rendered.endswith(f"[... truncated: page 1 of 12, the first {document.text_bytes} bytes]")


def test_reading_stops_at_the_text_bound_and_keeps_a_prefix():
    # Given a text bound of 1,000 bytes for the twelve-page report
    document = read_document(fixture("report.pdf"), PDF, DocumentLimits(max_text_bytes=1000))
    # Then what is kept is within it, cut on a character, and marked incomplete
    assert not document.complete
    assert sum(len(section.text.encode()) + 1 for section in document.sections) <= 1000
    assert document.sections[0].text.startswith("Files in Chat Threads")


# ------------------------------------------------------------------------------------ Office


def test_a_word_file_gives_its_header_paragraphs_table_rows_and_footer_in_order():
    # Given a Word file made by LibreOffice: header, heading, two paragraphs, table, paragraph, footer
    document = read_document(fixture("letter.docx"), DOCX)
    # Then each part is a section, and the body keeps the order, one table row a line
    assert (document.kind, document.pages, document.complete) == ("docx", None, True)
    assert [section.marker for section in document.sections] == ["header", "body", "footer"]
    header, body, footer = (section.text for section in document.sections)
    assert header == "Quarterly note — internal"
    assert body.split("\n") == [
        "Storage review",
        "The first paragraph says what this note is about: how much each team stores.",
        "The second paragraph comes before the table, with accents: café, naïve, Zürich.",
        "Team\tFiles\tGigabytes",
        "Research\t1200\t48.5",
        "Sales\t310\t7.25",
        "The last paragraph follows the table and closes the note.",
    ]
    assert footer == "Page footer: do not forward"


def test_an_excel_workbook_gives_every_sheet_as_rows():
    # Given a two-sheet workbook made by LibreOffice Calc (dates, numbers, a formula)
    document = read_document(fixture("budget.xlsx"), XLSX)
    # Then each sheet is a section named after it, one row a line, cells split by tabs,
    # dates as ISO dates, the formula as its calculated value, an empty cell kept in place
    assert (document.count, document.pages, document.complete) == (2, None, True)
    assert [section.marker for section in document.sections] == ["sheet 1: Budget", "sheet 2: Totals"]
    budget, totals = (section.text.split("\n") for section in document.sections)
    assert budget == [
        "Item\tOrdered\tCost",
        "Storage\t2025-03-14\t120.5",
        "Compute\t2025-04-01\t79.5",
        "Support, per seat\t\t12",
    ]
    assert totals == ["Total cost\t212", "Approved\tyes", "Note\tReviewed by finance"]


def test_a_presentation_gives_each_slide_numbered_with_its_notes():
    # Given three slides made by LibreOffice Impress, the second with a speaker note
    document = read_document(fixture("slides.pptx"), PPTX)
    # Then each slide is a section numbered in order, and `pages` counts the slides
    assert (document.pages, document.complete) == (3, True)
    assert [section.text.split("\n") for section in document.sections] == [
        ["Files in chat threads", "A tour in three slides"],
        [
            "How uploads work",
            "Presigned requests carry the checksum",
            "Every object is checked after it lands",
            "Notes: Speaker note: mention deduplication.",
        ],
        ["Questions welcome"],
    ]
    rendered = render_attachment("slides.pptx", stored_text(document), 10_000)
    assert rendered.startswith("Attached file slides.pptx (3 slides):\n[slide 1]\nFiles in chat threads\n")
    assert "\n[slide 2]\nHow uploads work\n" in rendered


@pytest.mark.parametrize(("name", "media_type"), [("report.pdf", XLSX), ("budget.xlsx", DOCX)])
def test_a_file_that_is_not_the_office_file_it_claims_is_unreadable(name, media_type):
    # Given a PDF called a workbook, or a workbook called a Word file
    # When read / Then it is refused as unreadable_document
    with pytest.raises(UnreadableDocument) as refused:
        read_document(fixture(name), media_type)
    assert refused.value.code == "unreadable_document"


def test_an_ole_compound_file_is_refused_as_password_protected_or_legacy():
    # Given the Excel 97 binary format: the container an Office file with a password has too
    with pytest.raises(UnreadableDocument) as refused:
        read_document(fixture("budget.xls"), XLSX)
    assert "password-protected or in a legacy format" in refused.value.message


def test_a_part_that_declares_a_document_type_is_refused():
    # Given a Word file whose body declares entities (a "billion laughs"), which Office never does
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    )
    original = zipfile.ZipFile(io.BytesIO(fixture("letter.docx")))
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "word/document.xml":
                data = laughs + data.split(b"?>", 1)[1].replace(b"Storage review", b"&c;")
            copy.writestr(info.filename, data)
    # When read / Then it is refused before any entity is expanded into the text
    with pytest.raises(UnreadableDocument) as refused:
        read_document(rewritten.getvalue(), DOCX)
    assert "declares a document type" in refused.value.message


# --------------------------------------------------------------------------------- zip bombs


def test_a_zip_bomb_is_refused_by_its_declared_size_without_inflating_it():
    # Given a well-formed workbook of 3 MB whose sheet inflates to 1 GiB
    bomb = make_bomb.deflate_bomb(1024 * MIB)
    declared = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(bomb)).infolist())
    assert declared > 1000 * MIB and len(bomb) < 4 * MIB
    # When it is read
    with pytest.raises(DocumentTooLarge) as refused:
        read_document(bomb, XLSX)
    # Then it is refused as unreadable_document for the bound, holding a tiny part of it
    assert refused.value.code == "unreadable_document"
    assert f"over the bound of {DocumentLimits().max_uncompressed_bytes}" in refused.value.message
    assert peak_bytes(lambda: read_document(bomb, XLSX)) < MIB


def test_a_bomb_within_the_size_bound_is_refused_by_its_compression_ratio():
    # Given a workbook that inflates to 200 MiB (under the 256 MiB bound) at ~336:1
    bomb = make_bomb.deflate_bomb(200 * MIB)
    # When read / Then the ratio refuses it before its sheet is inflated
    with pytest.raises(DocumentTooLarge) as refused:
        read_document(bomb, XLSX)
    assert "times, over the bound of 100" in refused.value.message
    assert peak_bytes(lambda: read_document(bomb, XLSX)) < MIB


def test_a_bomb_whose_headers_lie_about_its_size_is_not_inflated():
    # Given the 1 GiB bomb with headers that declare its sheet to be 4 KiB
    bomb = make_bomb.lying_bomb(1024 * MIB, declared=4096)
    # When read / Then no more than the declared size is inflated, and the part fails its check
    with pytest.raises(UnreadableDocument) as refused:
        read_document(bomb, XLSX)
    assert "could not be read" in refused.value.message
    assert peak_bytes(lambda: read_document(bomb, XLSX)) < MIB


def test_a_part_named_by_many_sheets_is_read_once_at_most():
    # Given 3,000 sheets that all name one 96 KiB part (288 MiB if each were read)
    bomb = make_bomb.repeated_part_bomb(sheets=3000, sheet_bytes=96 * 1024)
    # When read / Then the second mention of the part refuses the file
    with pytest.raises(UnreadableDocument) as refused:
        read_document(bomb, XLSX)
    assert "more than once" in refused.value.message


def test_an_office_file_with_more_parts_than_the_bound_is_refused():
    # Given a bound of 5 parts and a Word file of 12
    with pytest.raises(DocumentTooLarge) as refused:
        read_document(fixture("letter.docx"), DOCX, DocumentLimits(max_members=5))
    assert "has 12 parts, over the bound of 5" in refused.value.message


# -------------------------------------------------------------------------- what a model gets


def test_a_document_within_the_cap_is_rendered_whole():
    # Given the report's stored text and a cap it fits in
    document = read_document(fixture("report.pdf"), PDF)
    rendered = render_attachment("report.pdf", stored_text(document), 100_000)
    # Then the model gets a title, then every page after its marker, nothing named as left out
    title = "Attached file report.pdf (12 pages):\n"
    assert rendered.startswith(title + "[page 1]\nFiles in Chat Threads\n")
    assert re.findall(r"^\[page (\d+)\]$", rendered, re.MULTILINE) == [str(n) for n in range(1, 13)]
    assert "truncated" not in rendered
    assert len(rendered.encode()) == len(title.encode()) + document.text_bytes - 1  # less the last newline


def test_the_rendering_is_capped_and_names_what_it_leaves_out():
    # Given the report (about 12 kB of text) and a cap of 3,000 bytes
    document = read_document(fixture("report.pdf"), PDF)
    rendered = render_attachment("report.pdf", stored_text(document), 3000)
    # Then it is within the cap, and its last line names the pages and bytes it holds
    assert len(rendered.encode()) <= 3000
    body, note = rendered.split("\n", 1)[1].rsplit("\n", 1)
    pages = re.findall(r"^\[page (\d+)\]$", body, re.MULTILINE)
    kept = len(body.encode()) + 1
    assert (
        note
        == f"[... truncated: pages 1\u2013{pages[-1]} of 12, the first {kept} of {document.text_bytes} bytes]"
    )
    assert len(pages) >= 2


def test_a_word_file_s_truncation_names_bytes_only():
    document = read_document(fixture("letter.docx"), DOCX)
    rendered = render_attachment("letter.docx", stored_text(document), 200)
    assert rendered.startswith("Attached file letter.docx:\n[header]\n")
    assert re.search(rf"\[\.\.\. truncated: the first \d+ of {document.text_bytes} bytes\]$", rendered)
    assert len(rendered.encode()) <= 200


def test_a_ranged_read_of_the_stored_text_renders_as_the_whole_does():
    # Given the stored text and a cap: a reader fetches only its first bytes (a ranged GET)
    stored = stored_text(read_document(fixture("report.pdf"), PDF))
    for cap in (500, 2000, 5000):
        prefix = stored[: stored_prefix_bytes(cap)]
        assert len(prefix) < len(stored)
        # Then what it renders is what the whole stored text renders
        assert render_attachment("report.pdf", prefix, cap) == render_attachment("report.pdf", stored, cap)


@settings(max_examples=200, deadline=None)
@given(cap=st.integers(min_value=0, max_value=14_000), cut=st.integers(min_value=0, max_value=600))
def test_every_rendering_is_within_its_cap_and_every_prefix_renders(cap, cut):
    # Given any cap, and the stored text read up to any byte past its header (even in a character)
    stored = stored_text(read_document(fixture("letter.docx"), DOCX))
    header = stored.index(b"\n") + 1
    rendered = render_attachment("letter.docx", stored[: header + cut], cap)
    # Then the rendering fits and has no broken character
    assert len(rendered.encode()) <= cap
    assert "\ufffd" not in rendered


def test_the_stored_form_is_a_header_line_then_sections_after_form_feeds():
    document = read_document(fixture("budget.xlsx"), XLSX)
    stored = stored_text(document)
    line, body = stored.split(b"\n", 1)
    assert json.loads(line) == {
        "format": "agentfiles-text/1",
        "kind": "xlsx",
        "unit": "sheet",
        "count": 2,
        "sections": 2,
        "textBytes": document.text_bytes,
        "complete": True,
        "scanned": False,
    }
    assert body.decode().split("\f")[1:] == [section.rendered() for section in document.sections]
    assert len(body) - body.count(b"\f") == document.text_bytes


def test_the_stored_header_fits_its_bound_at_its_largest():
    # Given the longest values a header can hold
    document = ExtractedDocument("pptx", "slide", 10**15, (Section("slide 1", "x" * 10),), complete=False)
    assert len(stored_text(document).split(b"\n", 1)[0]) + 1 <= STORED_HEADER_MAX_BYTES


def test_an_unknown_media_type_is_a_caller_error():
    with pytest.raises(ValueError, match="not a document type"):
        read_document(b"a,b\n1,2\n", "text/csv")


def test_the_module_imports_no_aws_no_domain_logic_and_no_pdf_library():
    # Given a fresh interpreter / When the module is imported
    probe = run_probe("import json, sys, agentfiles.media.documents; print(json.dumps(sorted(sys.modules)))")
    assert probe.returncode == 0, probe.stderr
    loaded = set(json.loads(probe.stdout))
    # Then pypdf waits for the first PDF, and nothing of AWS or the data layer comes with it
    assert not {"pypdf", "boto3", "botocore", "agentfiles.data", "agentfiles.logic"} & loaded
    assert documents.__name__ in loaded
