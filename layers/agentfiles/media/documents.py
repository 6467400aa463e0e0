"""Documents as text: a PDF, Word, Excel or PowerPoint file read once into text by page,
sheet or slide, kept in one stored form, and rendered for a model within a byte cap.

Bytes in, values out: nothing here touches AWS, the table or the settings; the caller
passes the bounds (`DocumentLimits`) and stores what `stored_text` returns.

Why these readers (layer sizes are unzipped wheels with their dependencies, for
manylinux2014_aarch64 / CPython 3.14; imports are the CPU time of a fresh interpreter,
median of 21; `python -m bench documents` repeats the extraction figures):

- PDF: pypdf, pure Python (1.8 MiB, ~0.13 s to import, so it is imported only when a PDF
  is read), with `cryptography` beside it (14.6 MiB, the version the authorizer's layer
  already pins) because pypdf decrypts AES only through it: without it, a PDF encrypted
  with AES and an empty user password (permissions only, as Acrobat and qpdf make them)
  could not be read at all, and one with a real password could not even be told apart.
- DOCX, XLSX, PPTX: the standard library. An Office file is a zip of XML parts; the text
  is in a few of them (`w:p`/`w:t` in `word/document.xml`, shared strings and cells in the
  sheets, `a:p`/`a:t` in `ppt/slides/slideN.xml`), and expat driven by a target streams
  each part without building a tree. It adds 0 bytes and ~0.03 s of import.
  python-docx + openpyxl + python-pptx would add 34.8 MiB and ~0.33 s (lxml is compiled,
  11 MiB; python-pptx also pulls Pillow and XlsxWriter); openpyxl alone is pure Python
  (1.0 MiB) but ~0.15-0.2 s to import and opens the zip itself, outside the bounds below;
  markitdown[docx,xlsx,pptx,pdf] is 229.6 MiB (onnxruntime, numpy, pandas, magika) and
  ~0.95 s, most of Lambda's 250 MB on its own. Reading the parts here also means one zip
  guard covers all three formats and every byte inflated passes through it.

Zip bombs: an Office file is refused as `unreadable_document` (`DocumentTooLarge`) before
any part is inflated when its parts declare more than `max_uncompressed_bytes` in all,
when it has more than `max_members` parts, or when a part over `ratio_grace_bytes`
declares a compression ratio over `max_compression_ratio` (Apache POI's defaults: 100:1
past 100 KiB). Declared sizes can lie, so each part is then read in chunks through a
counter that stops at the same bound (zipfile also never returns more than a part
declares, and a part that inflates to something else fails its CRC).

The stored form is UTF-8: one JSON header line, then each section as a form feed, its
marker line (`[page 3]`) and its text. A form feed never occurs in a text (they are
turned into newlines), so a ranged GET of the first K bytes is a valid prefix: complete
sections, then at most one cut short, which `render_attachment` names as truncated.
Rendering is the body without its form feeds under an `Attached file NAME (N pages):`
line, so what a model reads costs the bytes it is counted for.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from xml.etree.ElementTree import ParseError, XMLParser

KIB = 1024
MIB = 1024 * KIB

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OFFICE_TYPES = frozenset({DOCX, XLSX, PPTX})
DOCUMENT_TYPES = OFFICE_TYPES | {PDF}

Kind = Literal["pdf", "docx", "xlsx", "pptx"]
Unit = Literal["page", "sheet", "slide"]

# Why a section has no text; each is shown to the model in the section's marker.
IMAGE_ONLY = "image only, no text layer"
NO_TEXT = "no text"
NOT_EXTRACTED = "its text could not be extracted"

STORED_FORMAT = "agentfiles-text/1"
# The header line is written within this many bytes, so a reader that wants K bytes of
# text asks for K + STORED_HEADER_MAX_BYTES (see `stored_prefix_bytes`).
STORED_HEADER_MAX_BYTES = 256


class DocumentRejected(Exception):
    """A document the upload check refuses; `code` is the file's rejection code."""

    code: ClassVar[str]

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EncryptedPdf(DocumentRejected):
    """A PDF that does not open without a password (one encrypted with an empty user
    password, for permissions only, opens and is read)."""

    code = "encrypted_pdf"


class UnreadableDocument(DocumentRejected):
    """A PDF or Office file that does not parse."""

    code = "unreadable_document"


class DocumentTooLarge(UnreadableDocument):
    """An Office file whose parts would inflate past the bounds, refused before they are.
    Its code is the agreed `unreadable_document`; the message says which bound it broke,
    which is what the owner needs (a bomb and an oversized sheet are refused alike)."""


@dataclass(frozen=True)
class DocumentLimits:
    """The bounds of one extraction; the caller builds them from its settings."""

    # All parts of an Office file, as declared. Above MAX_UPLOAD_BYTES (100 MiB) on
    # purpose: images and media inside a file are stored near 1:1, so a legitimate file
    # at the upload limit declares a little more than its size; a deflate bomb (~1000:1)
    # declares 256 MiB from ~256 KiB.
    max_uncompressed_bytes: int = 256 * MIB
    max_members: int = 10_000
    max_compression_ratio: int = 100
    ratio_grace_bytes: int = 100 * KIB
    # Text kept per document (Apache POI stops at 10 M characters): far above what any
    # model call takes (TEXT_ATTACHMENT_MAX_BYTES), low enough for a 512 MB function.
    max_text_bytes: int = 8 * MIB
    # Reading stops (and says so) after this long, so a huge or slow PDF ends as a
    # truncated text within the upload check's timeout, never as a retried timeout.
    max_seconds: float = 20.0


DEFAULT_LIMITS = DocumentLimits()


@dataclass(frozen=True)
class Section:
    """One page, sheet or slide (or a Word file's header, body or footer)."""

    marker: str
    text: str
    note: str | None = None

    def rendered(self) -> str:
        head = f"[{self.marker}: {self.note}]" if self.note else f"[{self.marker}]"
        return f"{head}\n{self.text}\n" if self.text else f"{head}\n"


@dataclass(frozen=True)
class ExtractedDocument:
    kind: Kind
    unit: Unit | None  # what one section is; None for a Word file (header, body, footer)
    count: int | None  # pages, sheets or slides in the file, read or not
    sections: tuple[Section, ...]
    complete: bool  # False when a bound stopped the reading: the text is a prefix

    @property
    def pages(self) -> int | None:
        """What `File.pages` reports: a PDF's pages, a presentation's slides."""
        return self.count if self.kind in ("pdf", "pptx") else None

    @property
    def scanned(self) -> bool:
        """A PDF whose pages have images and no text layer at all."""
        return (
            self.kind == "pdf"
            and not any(section.text for section in self.sections)
            and any(section.note == IMAGE_ONLY for section in self.sections)
        )

    @property
    def text_bytes(self) -> int:
        """The UTF-8 size of the text a model could be given, markers included."""
        return sum(len(section.rendered().encode()) for section in self.sections)


def read_document(data: bytes, media_type: str, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """The text of a document of one of `DOCUMENT_TYPES`; raises a `DocumentRejected`."""
    readers = {PDF: read_pdf, DOCX: read_docx, XLSX: read_xlsx, PPTX: read_pptx}
    if media_type not in readers:
        raise ValueError(f"not a document type: {media_type}")
    return readers[media_type](data, limits)


# ---------------------------------------------------------------------------- text budget


class _Stop(Exception):
    """A bound ends the reading: what was read is kept, and said to be incomplete."""


class _TextFull(_Stop):
    """The document's text reached `max_text_bytes`; its argument is the text that fits."""


class _TimeUp(_Stop):
    """The reading took `max_seconds`."""


_UNWANTED = re.compile("[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff]")
_BREAKS = re.compile("\r\n?|[\x0b\x0c]")
_LIGATURES = str.maketrans(
    dict(
        zip(
            "\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06",
            ("ff", "fi", "fl", "ffi", "ffl", "st", "st"),
            strict=True,
        )
    )
)


def _clean(text: str) -> str:
    """Text as stored: no form feed (it separates sections), no control character but tab
    and newline, no lone surrogate (it cannot be encoded), typographic ligatures spelled out."""
    return _UNWANTED.sub("", _BREAKS.sub("\n", text)).translate(_LIGATURES)


def _cut_utf8(data: bytes, size: int) -> bytes:
    """The longest prefix of `data` within `size` bytes that ends on a character boundary."""
    if len(data) <= size:
        return data
    end = max(size, 0)
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]


class _Budget:
    """What is left of one document's `max_text_bytes`, shared by its sections."""

    def __init__(self, size: int):
        self.left = size

    def take(self, text: str) -> str:
        """`text` (cleaned), or its prefix that fits; raises `_TextFull` once nothing is left."""
        text = _clean(text)
        data = text.encode()
        if len(data) + 1 <= self.left:
            self.left -= len(data) + 1
            return text
        kept = _cut_utf8(data, self.left - 1).decode()
        self.left = 0
        raise _TextFull(kept)


class _Lines:
    """The lines of one section, within the document's budget."""

    def __init__(self, budget: _Budget):
        self.budget = budget
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        try:
            self.lines.append(self.budget.take(line))
        except _TextFull as full:
            self.lines.append(full.args[0])
            raise

    def text(self) -> str:
        return "\n".join(self.lines).rstrip()


# -------------------------------------------------------------------------------------- PDF


def read_pdf(data: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """Each page's text layer, page by page; a page without one is marked image only (a
    scan) or empty. Raises `EncryptedPdf` or `UnreadableDocument`."""
    # pypdf costs ~0.13 s to import: a function that never meets a PDF never pays it.
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        # The reader has already tried the empty password; asking again says if it worked.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedPdf("the PDF is password-protected: it cannot be opened without its password")
        count = len(reader.pages)
    except DocumentRejected:
        raise
    except DependencyError:
        raise  # AES without `cryptography`: the deployment is wrong, not the file
    except Exception as error:
        raise UnreadableDocument(f"the PDF could not be read ({_reason(error)})") from error

    budget = _Budget(limits.max_text_bytes)
    started = time.monotonic()
    sections: list[Section] = []
    complete = True
    for index in range(count):
        if sections and (budget.left <= 0 or time.monotonic() - started > limits.max_seconds):
            complete = False
            break
        marker = f"page {index + 1}"
        try:
            page = reader.pages[index]
            raw = page.extract_text()
        except Exception:
            sections.append(Section(marker, "", NOT_EXTRACTED))
            continue
        try:
            text = budget.take(raw.strip())
        except _TextFull as full:
            text, complete = full.args[0], False
        if text:
            sections.append(Section(marker, text))
        else:
            sections.append(Section(marker, "", IMAGE_ONLY if _has_images(page) else NO_TEXT))
        if not complete:
            break
    return ExtractedDocument("pdf", "page", count, tuple(sections), complete)


def _has_images(page: Any) -> bool:
    """Whether a page draws an image (directly or through a form), as a scanned page does."""
    try:
        return _draws_images(page.get("/Resources"), depth=0)
    except Exception:
        return False


def _draws_images(resources: Any, depth: int) -> bool:
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if resources else None
    if xobjects is None:
        return False
    for reference in xobjects.get_object().values():
        xobject = reference.get_object()
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        if subtype == "/Form" and depth < 3 and _draws_images(xobject.get("/Resources"), depth + 1):
            return True
    return False


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text[:120]}" if text else type(error).__name__


# ------------------------------------------------------------------------- Office packages

# A password-protected Office file is not a zip but an OLE compound file around it.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 64 * KIB
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_RELATIONSHIP_ID = (
    "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id",
    "{http://purl.oclc.org/ooxml/officeDocument/relationships}id",
)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class _Package:
    """An Office file's zip, checked against the bounds before any part is inflated; every
    part is then read through one counter that stops at the same bound."""

    def __init__(self, data: bytes, limits: DocumentLimits, what: str):
        self.what = what
        if data.startswith(_OLE_MAGIC):
            raise UnreadableDocument(f"the {what} is password-protected or in a legacy format")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as error:
            raise UnreadableDocument(f"the {what} is not a valid Office file ({_reason(error)})") from error
        if len(infos) > limits.max_members:
            raise DocumentTooLarge(
                f"the {what} has {len(infos)} parts, over the bound of {limits.max_members}"
            )
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_uncompressed_bytes:
            raise DocumentTooLarge(
                f"the {what} expands to {declared} bytes, over the bound of {limits.max_uncompressed_bytes}"
            )
        for info in infos:
            if (
                info.file_size > limits.ratio_grace_bytes
                and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)
            ):
                ratio = info.file_size // max(info.compress_size, 1)
                raise DocumentTooLarge(
                    f"the {what}'s part {info.filename} expands {ratio} times,"
                    f" over the bound of {limits.max_compression_ratio}"
                )
        self.infos = {info.filename: info for info in infos}
        self.left = limits.max_uncompressed_bytes
        self.deadline = time.monotonic() + limits.max_seconds
        self.parsed: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.infos

    def parse(self, name: str, target: Any, root: str | None = None) -> None:
        """Streams one part into `target` (an XMLParser target), once: a file whose parts
        name one part twice (two sheets, one sheet part) would inflate it again each time.
        A part with a document type declaration is refused: OOXML never has one, and it
        is where entities are declared and expanded. A main part whose root element is
        not `root` is another kind of file (a workbook sent as a Word file)."""
        info = self.infos.get(name)
        if info is None:
            raise UnreadableDocument(f"the {self.what} has no part {name}")
        if name in self.parsed:
            raise UnreadableDocument(f"the {self.what} names its part {name} more than once")
        self.parsed.add(name)
        try:
            with self.zip.open(info) as stream:
                parser = XMLParser(target=target)
                declared_left = info.file_size
                while chunk := stream.read(_CHUNK):
                    # zipfile returns no more than a part declares; this does not rely on it.
                    declared_left -= len(chunk)
                    self.left -= len(chunk)
                    if declared_left < 0 or self.left < 0:
                        raise DocumentTooLarge(
                            f"the {self.what}'s part {name} inflates past its declared size"
                        )
                    if time.monotonic() > self.deadline:
                        raise _TimeUp
                    parser.feed(chunk)
                parser.close()
            if root is not None and target.root != root:
                raise UnreadableDocument(
                    f"the {self.what} is another kind of file (its main part is a {target.root})"
                )
        except (DocumentRejected, _Stop):
            raise
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
        except (ParseError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
            raise UnreadableDocument(f"the {self.what}'s part {name} could not be read ({_reason(e)})") from e

    def relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """A part's relationships: id -> (type's last word, target part name)."""
        folder, base = posixpath.split(part)
        rels = posixpath.join(folder, "_rels", f"{base}.rels")
        if not self.has(rels):
            return {}
        target = _Relationships(folder)
        self.parse(rels, target)
        return target.found

    def main_part(self, kind: str) -> str:
        for _, (rel_type, target) in self.relationships("").items():
            if rel_type == "officeDocument":
                return target
        raise UnreadableDocument(f"the {self.what} is not a {kind} file: it names no main part")


class _Target:
    """An XMLParser target that needs only some of the callbacks. A target of a main part
    records the local name of its root element (`root`), which says what the file is."""

    root: str | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise UnreadableDocument("a part of the file declares a document type, which Office files never do")

    def close(self) -> None:
        pass


class _Relationships(_Target):
    def __init__(self, folder: str):
        self.folder = folder
        self.found: dict[str, tuple[str, str]] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if _local(tag) != "Relationship" or attrib.get("TargetMode") == "External":
            return
        target = attrib.get("Target", "")
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            path = posixpath.normpath(posixpath.join(self.folder, target))
        self.found[attrib.get("Id", "")] = (attrib.get("Type", "").rpartition("/")[2], path)


class _Paragraphs(_Target):
    """The paragraphs of a WordprocessingML or DrawingML part in document order, a table as
    one line per row with its cells split by tabs. Only the first choice of markup
    compatibility alternatives is read (the fallback repeats it).

    The text of shapes that are placeholders of the `unwanted` types (a slide's number,
    date and footer, a notes page's picture of its slide) is left out."""

    def __init__(self, lines: _Lines, *, unwanted: frozenset[str] = frozenset()):
        self.lines = lines
        self.unwanted = unwanted
        self.skipping = 0
        self.runs = 0
        self.in_text = False
        self.paragraphs: list[list[str]] = []
        self.tables: list[list[list[list[str]]]] = []  # tables > rows > cells > paragraphs
        self.shapes: list[bool] = []  # per open shape: is its text wanted?

    def _kept(self) -> bool:
        return not self.shapes or self.shapes[-1]

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.root is None:
            self.root = _local(tag)
        if self.skipping or tag == _MC_FALLBACK:
            self.skipping += 1
            return
        name = _local(tag)
        if name == "p":
            self.paragraphs.append([])
        elif name == "t":
            self.in_text = True
        elif name == "r":
            self.runs += 1
        elif name == "br" and self.paragraphs:  # inside a run in Word, between runs in DrawingML
            self.paragraphs[-1].append("\n")
        elif name in ("tab", "cr", "noBreakHyphen") and self.runs and self.paragraphs:
            # Only inside a run: a `w:tab` in a paragraph's properties is a tab stop.
            self.paragraphs[-1].append({"tab": "\t", "noBreakHyphen": "-"}.get(name, "\n"))
        elif name == "tbl":
            self.tables.append([])
        elif name == "tr" and self.tables:
            self.tables[-1].append([])
        elif name == "tc" and self.tables and self.tables[-1]:
            self.tables[-1][-1].append([])
        elif name == "sp":
            self.shapes.append(True)
        elif name == "ph" and self.shapes:
            self.shapes[-1] = attrib.get("type", "body") not in self.unwanted

    def data(self, text: str) -> None:
        if self.in_text and not self.skipping and self.paragraphs:
            self.paragraphs[-1].append(text)

    def end(self, tag: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        name = _local(tag)
        if name == "t":
            self.in_text = False
        elif name == "r":
            self.runs -= 1
        elif name == "p" and self.paragraphs:
            text = "".join(self.paragraphs.pop())
            if not self._kept():
                return
            if self.tables and self.tables[-1] and self.tables[-1][-1]:
                self.tables[-1][-1][-1].append(text)
            elif text.strip():
                self.lines.add(text)
        elif name == "tr" and self.tables and self.tables[-1]:
            cells = self.tables[-1].pop()
            row = "\t".join(" ".join(_one_line(p) for p in cell if p.strip()) for cell in cells).rstrip("\t")
            if not row.strip():
                return
            if len(self.tables) > 1 and self.tables[-2] and self.tables[-2][-1]:
                self.tables[-2][-1][-1].append(row)  # a nested table's row joins its cell
            else:
                self.lines.add(row)
        elif name == "tbl" and self.tables:
            self.tables.pop()
        elif name == "sp" and self.shapes:
            self.shapes.pop()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_office(data: bytes, limits: DocumentLimits, what: str, read: Any) -> tuple[list[Section], bool]:
    """Runs `read(package, budget, sections)`, which appends sections as it reads them; a
    full budget ends the reading with what was read, and says it is not complete."""
    package = _Package(data, limits, what)
    budget = _Budget(limits.max_text_bytes)
    sections: list[Section] = []
    try:
        read(package, budget, sections)
        return sections, True
    except _Stop:
        return sections, False


def _section(marker: str, lines: _Lines) -> Section:
    text = lines.text()
    return Section(marker, text) if text else Section(marker, "", NO_TEXT)


# ------------------------------------------------------------------------------------ DOCX


def read_docx(data: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """A Word file's headers, body (paragraphs and table rows in order) and footers."""

    def read(package: _Package, budget: _Budget, sections: list[Section]) -> None:
        main = package.main_part("Word")
        parts = package.relationships(main).values()
        for kind in ("header", "body", "footer"):
            lines = _Lines(budget)
            pending = _Pending(sections, kind, lines)
            try:
                if kind == "body":
                    package.parse(main, _Paragraphs(lines), root="document")
                else:
                    seen: set[str] = set()
                    for part in dict.fromkeys(p for t, p in parts if t == kind and package.has(p)):
                        before = len(lines.lines)
                        package.parse(part, _Paragraphs(lines))
                        # First-page and even-page headers often repeat the default one.
                        added = "\n".join(lines.lines[before:])
                        if added in seen:
                            del lines.lines[before:]
                        seen.add(added)
            finally:
                pending.flush(keep_empty=kind == "body")

    sections, complete = _read_office(data, limits, "Word document", read)
    return ExtractedDocument("docx", None, None, tuple(sections), complete)


class _Pending:
    """Appends a section when its reading ends, normally or because the budget is full."""

    def __init__(self, sections: list[Section], marker: str, lines: _Lines):
        self.sections, self.marker, self.lines = sections, marker, lines

    def flush(self, *, keep_empty: bool) -> None:
        if keep_empty or self.lines.text():
            self.sections.append(_section(self.marker, self.lines))


# ------------------------------------------------------------------------------------ XLSX

# Number formats that show a date or time in every locale (ECMA-376 part 1, 18.8.30).
_DATE_FORMAT_IDS = frozenset({*range(14, 23), 45, 46, 47})
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]')
_ELAPSED = re.compile(r"\[(h+|m+|s+)\]", re.IGNORECASE)


def read_xlsx(data: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """Every sheet of a workbook, in order, one row a line with cells split by tabs; values
    as last calculated (a formula's cached result), dates in ISO 8601."""
    count = 0

    def read(package: _Package, budget: _Budget, sections: list[Section]) -> None:
        nonlocal count
        main = package.main_part("Excel")
        workbook = _Workbook()
        package.parse(main, workbook, root="workbook")
        count = len(workbook.sheets)
        parts = package.relationships(main)
        strings: list[str] = []
        styles = _Styles()
        for rel_type, part in parts.values():
            if rel_type == "sharedStrings" and package.has(part):
                package.parse(part, _SharedStrings(strings, limits.max_text_bytes))
            elif rel_type == "styles" and package.has(part):
                package.parse(part, styles)
        dates = styles.date_styles()
        for number, (name, rel_id) in enumerate(workbook.sheets, 1):
            lines = _Lines(budget)
            pending = _Pending(sections, f"sheet {number}: {_one_line(_clean(name))}", lines)
            try:
                rel_type, part = parts.get(rel_id, ("", ""))
                if rel_type == "worksheet" and package.has(part):
                    package.parse(part, _Cells(lines, strings, dates, workbook.date1904))
            finally:
                pending.flush(keep_empty=True)

    sections, complete = _read_office(data, limits, "Excel workbook", read)
    return ExtractedDocument("xlsx", "sheet", count, tuple(sections), complete)


class _Workbook(_Target):
    def __init__(self) -> None:
        self.sheets: list[tuple[str, str]] = []
        self.date1904 = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _local(tag)
        if self.root is None:
            self.root = name
        if name == "sheet":
            rel_id = next((attrib[key] for key in _RELATIONSHIP_ID if key in attrib), "")
            self.sheets.append((attrib.get("name", ""), rel_id))
        elif name == "workbookPr":
            self.date1904 = attrib.get("date1904", "false").lower() in ("1", "true")


class _SharedStrings(_Target):
    """The workbook's strings, up to `max_chars` characters in all (cells that point past
    them read as empty: the text they would add is past the document's budget anyway)."""

    def __init__(self, strings: list[str], max_chars: int):
        self.strings = strings
        self.left = max_chars
        self.current: list[str] | None = None
        self.in_text = False
        self.phonetic = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _local(tag)
        if name == "si":
            self.current = []
        elif name == "t":
            self.in_text = True
        elif name == "rPh":  # a phonetic reading above East Asian text, not the text
            self.phonetic += 1

    def data(self, text: str) -> None:
        if self.in_text and not self.phonetic and self.current is not None:
            self.current.append(text)

    def end(self, tag: str) -> None:
        name = _local(tag)
        if name == "t":
            self.in_text = False
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "si" and self.current is not None:
            text = _one_cell("".join(self.current)) if self.left > 0 else ""
            self.left -= len(text)
            self.strings.append(text)
            self.current = None


class _Styles(_Target):
    """Which cell styles (`s` indexes into `cellXfs`) show a number as a date or time."""

    def __init__(self) -> None:
        self.formats: dict[int, str] = {}
        self.cell_formats: list[int] = []
        self.in_cell_xfs = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _local(tag)
        if name == "numFmt":
            self.formats[_int(attrib.get("numFmtId"))] = attrib.get("formatCode", "")
        elif name == "cellXfs":
            self.in_cell_xfs = True
        elif name == "xf" and self.in_cell_xfs:
            self.cell_formats.append(_int(attrib.get("numFmtId")))

    def end(self, tag: str) -> None:
        if _local(tag) == "cellXfs":
            self.in_cell_xfs = False

    def date_styles(self) -> dict[str, str]:
        """A cell's `s` (an index into `cellXfs`, as written) -> "date", "time" or "datetime"."""
        found: dict[str, str] = {}
        for index, format_id in enumerate(self.cell_formats):
            kind = _date_kind(format_id, self.formats.get(format_id))
            if kind:
                found[str(index)] = kind
        return found


def _date_kind(format_id: int, code: str | None) -> str | None:
    if code is None:
        if format_id in (18, 19, 20, 21, 45, 46, 47):
            return "time"
        return "datetime" if format_id == 22 else "date" if format_id in _DATE_FORMAT_IDS else None
    section = code.split(";", 1)[0]
    elapsed = bool(_ELAPSED.search(section))
    section = _FORMAT_LITERALS.sub("", section).lower()
    has_date = any(letter in section for letter in "dy") or (
        "m" in section and not any(letter in section for letter in "hs")
    )
    has_time = elapsed or any(letter in section for letter in "hs")
    if has_date and has_time:
        return "datetime"
    return "date" if has_date else "time" if has_time else None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class _Cells(_Target):
    """A worksheet's rows; each cell in its column (by its reference), empty cells between.

    The busiest target (a few events per cell): it compares whole tags, in the namespace
    its root element names, and does per cell only what that cell's type needs."""

    def __init__(self, lines: _Lines, strings: list[str], dates: dict[str, str], date1904: bool):
        self.lines, self.strings, self.dates, self.date1904 = lines, strings, dates, date1904
        self.tags: dict[str, str] = {}  # whole tag -> local name, for the tags this target uses
        self.row: dict[int, str] = {}
        self.columns: dict[str, int] = {}  # a reference's letters -> its column index
        self.column = -1
        self.cell_type = "n"
        self.style = "0"
        self.value: list[str] = []
        self.where: str | None = None  # "v" or "is" while inside one
        self.phonetic = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if not self.tags:
            namespace = tag[: tag.index("}") + 1] if tag.startswith("{") else ""
            self.tags = {namespace + name: name for name in ("row", "c", "v", "is", "rPh")}
        name = self.tags.get(tag)
        if name == "c":
            reference = attrib.get("r")
            if reference:
                letters = reference.rstrip("0123456789")
                column = self.columns.get(letters)
                if column is None:
                    column = self.columns[letters] = _column(letters)
                self.column = column
            else:
                self.column += 1
            self.cell_type = attrib.get("t", "n")
            self.style = attrib.get("s", "0")
            self.value = []
        elif name == "v" or name == "is":
            self.where = name
        elif name == "row":
            self.row, self.column = {}, -1
        elif name == "rPh":
            self.phonetic += 1

    def data(self, text: str) -> None:
        if self.where is not None and not self.phonetic:
            self.value.append(text)

    def end(self, tag: str) -> None:
        name = self.tags.get(tag)
        if name == "c":
            if self.value:
                text = self._text("".join(self.value))
                if text:
                    self.row[self.column] = text
        elif name == "v" or name == "is":
            self.where = None
        elif name == "row":
            if self.row:
                width = max(self.row) + 1
                self.lines.add("\t".join([self.row.get(index, "") for index in range(width)]))
        elif name == "rPh":
            self.phonetic -= 1

    def _text(self, value: str) -> str:
        cell_type = self.cell_type
        if cell_type == "s":
            index = _int(value)
            return self.strings[index] if 0 <= index < len(self.strings) else ""
        if cell_type in ("inlineStr", "str"):
            return _one_cell(value)
        if cell_type == "b":
            return "TRUE" if value.strip() == "1" else "FALSE"
        if cell_type in ("e", "d"):
            return value.strip()
        return self._number(value.strip())

    def _number(self, value: str) -> str:
        kind = self.dates.get(self.style)
        if kind is None and len(value) <= 15 and "E" not in value and "e" not in value:
            return value  # as written, which is what Excel shows (15 significant digits)
        try:
            number = float(value)
        except ValueError:
            return value
        if kind:
            return _excel_date(number, kind, self.date1904) or value
        return format(number, ".15g")


def _one_cell(text: str) -> str:
    """A cell's text on one line without tabs: one row a line, its cells split by tabs."""
    if "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text


def _column(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - 64)
    return index - 1


def _excel_date(serial: float, kind: str, date1904: bool) -> str | None:
    if serial < 0:
        return None
    if date1904:
        epoch = datetime(1904, 1, 1)
    else:
        # Excel counts a 29 February 1900 that never was: serials before it are a day off.
        epoch = datetime(1899, 12, 31) if serial < 60 else datetime(1899, 12, 30)
    try:
        moment = epoch + timedelta(seconds=round(serial * 86400))
    except OverflowError:
        return None
    if kind == "time" and serial < 1:
        return moment.time().isoformat()
    if kind == "date" or (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat()
    return moment.isoformat(sep=" ")


# ------------------------------------------------------------------------------------ PPTX


# Placeholders whose text repeats on every slide or notes page: number, date, header, footer,
# and the notes page's picture of its slide.
_SLIDE_FURNITURE = frozenset({"sldNum", "dt", "hdr", "ftr", "sldImg"})


def read_pptx(data: bytes, limits: DocumentLimits = DEFAULT_LIMITS) -> ExtractedDocument:
    """Each slide's text in order (shapes, then tables as rows), its notes after it."""
    count = 0

    def read(package: _Package, budget: _Budget, sections: list[Section]) -> None:
        nonlocal count
        main = package.main_part("PowerPoint")
        presentation = _SlideList()
        package.parse(main, presentation, root="presentation")
        count = len(presentation.slides)
        parts = package.relationships(main)
        for number, rel_id in enumerate(presentation.slides, 1):
            lines = _Lines(budget)
            pending = _Pending(sections, f"slide {number}", lines)
            try:
                rel_type, part = parts.get(rel_id, ("", ""))
                if rel_type != "slide" or not package.has(part):
                    continue
                package.parse(part, _Paragraphs(lines, unwanted=_SLIDE_FURNITURE))
                notes = [p for t, p in package.relationships(part).values() if t == "notesSlide"]
                if notes and package.has(notes[0]):
                    note_lines = _Lines(budget)
                    try:
                        package.parse(notes[0], _Paragraphs(note_lines, unwanted=_SLIDE_FURNITURE))
                    finally:
                        if note_lines.text():
                            lines.lines.append("Notes: " + note_lines.text())
            finally:
                pending.flush(keep_empty=True)

    sections, complete = _read_office(data, limits, "PowerPoint presentation", read)
    return ExtractedDocument("pptx", "slide", count, tuple(sections), complete)


class _SlideList(_Target):
    def __init__(self) -> None:
        self.slides: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.root is None:
            self.root = _local(tag)
        if _local(tag) == "sldId":
            self.slides.append(next((attrib[key] for key in _RELATIONSHIP_ID if key in attrib), ""))


# ----------------------------------------------------------------------- stored and rendered


def stored_text(document: ExtractedDocument) -> bytes:
    """The stored form: a JSON header line, then per section a form feed and its rendering."""
    body = "".join(section.rendered() for section in document.sections)
    header = {
        "format": STORED_FORMAT,
        "kind": document.kind,
        "unit": document.unit,
        "count": document.count,
        "sections": len(document.sections),
        "textBytes": len(body.encode()),
        "complete": document.complete,
        "scanned": document.scanned,
    }
    line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return line + "".join("\f" + section.rendered() for section in document.sections).encode()


def stored_prefix_bytes(max_bytes: int) -> int:
    """How many bytes of a stored text to read to render it within `max_bytes`."""
    return STORED_HEADER_MAX_BYTES + max_bytes


def render_attachment(name: str, stored: bytes, max_bytes: int) -> str:
    """What a model that cannot read the file gets: `Attached file NAME (N pages):` and the
    text, whose UTF-8 size is at most `max_bytes`; what is left out is named, as in
    `[... truncated: pages 1-7 of 30, the first N of M bytes]` (with an en dash). `stored` may be a prefix
    of the stored text (at least its header line, see `stored_prefix_bytes`)."""
    header, pieces, available = _parse_stored(stored)
    if header["scanned"]:
        return _fit(f"[{name}: scanned PDF, no text layer]", max_bytes)
    unit, count = header.get("unit"), header.get("count")
    title = f"Attached file {name}{_counted(unit, count)}:\n"
    total, complete = header["textBytes"], header["complete"]
    if available == total and complete and len(title.encode()) + total <= max_bytes:
        return (title + "".join(pieces)).rstrip("\n")

    # The note's size depends on what it names; reserve room for it at its largest.
    reserve = max(
        len(_truncation(unit, count, 1, max(header["sections"], 1), total, total, complete).encode()),
        len(_truncation(unit, count, 1, 0, 0, total, complete).encode()),
    )
    room = max_bytes - len(title.encode()) - reserve
    kept: list[str] = []
    used = 0
    for piece in pieces:
        piece = piece if piece.endswith("\n") else piece + "\n"  # the end of a ranged read
        data = piece.encode()
        if used + len(data) <= room:
            kept.append(piece)
            used += len(data)
            continue
        marker_line = piece.split("\n", 1)[0] + "\n"
        if room - used > len(marker_line.encode()) + 1:
            kept.append(_cut_utf8(data, room - used - 1).decode().rstrip("\n") + "\n")
            used += len(kept[-1].encode())
        break
    note = _truncation(unit, count, 1, len(kept), used, total, complete)
    return _fit(title + "".join(kept) + note, max_bytes)


def _parse_stored(stored: bytes) -> tuple[dict[str, Any], list[str], int]:
    """The header, the sections' renderings (the last perhaps cut short) and their size."""
    line, newline, body = stored.partition(b"\n")
    if not newline:
        raise ValueError("the stored text is cut inside its header line: read more of it")
    header = json.loads(line)
    if header.get("format") != STORED_FORMAT:
        raise ValueError(f"not a stored text of {STORED_FORMAT}")
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        # Only the end of a ranged read can split a character.
        text = body[: error.start].decode()
    pieces = [piece for piece in text.split("\f") if piece]
    return header, pieces, sum(len(piece.encode()) for piece in pieces)


def _counted(unit: str | None, count: int | None) -> str:
    if not unit or count is None:
        return ""
    return f" ({count} {unit}{'' if count == 1 else 's'})"


def _truncation(
    unit: str | None, count: int | None, first: int, last: int, used: int, total: int, complete: bool
) -> str:
    of = f"the first {used} of {total} bytes" if complete else f"the first {used} bytes"
    if not unit or count is None:
        return f"[... truncated: {of}]"
    if last < first:
        return f"[... truncated: none of the {count} {unit}s, {of}]"
    span = f"{unit} {first}" if first == last else f"{unit}s {first}\u2013{last}"
    return f"[... truncated: {span} of {count}, {of}]"


def _fit(text: str, max_bytes: int) -> str:
    return _cut_utf8(text.encode(), max_bytes).decode()
