"""What one model call is given: a thread's history as Chat Completions messages, each
attachment in the form that model takes, within a budget of attachment bytes.

The form is decided per call from the file rows, before anything is read, by what the
model can read (`catalog.capability`):

- an image goes to a model that sees images as its model copy for that model's geometry
  (`derived[catalog.geometry(model).derived_name]`: upright, no metadata, fitted), or as
  the original when the file has none (a file from before copies were made); by URL
  (presigned or public) or, in inline mode, as the copy's bytes. A model that cannot see
  images gets `[image NAME: this model cannot see images]` instead.
- a PDF goes to a model that reads files as a `file` part; to one that does not, as the
  text extracted at upload (`derived[TEXT]`, rendered by `documents.render_attachment`
  within TEXT_ATTACHMENT_MAX_BYTES, its truncation named; a scan says it has no text
  layer). In the history (every message but the one being answered) a PDF with extracted
  text goes as that text to every model: its original is read for the message that
  brought it, not again on every later turn (but a scan, whose text says only that it
  has none, keeps going as a `file` part to a model that reads files).
- an Office file (DOCX, XLSX, PPTX) always goes as its extracted text.
- a text file is read with one ranged GET of at most TEXT_ATTACHMENT_MAX_BYTES.
- a part this model refused before (`MessageRecord.refused_parts`) is left out and named.

Every attachment the worker itself puts in the request costs its bytes; an image handed
over as a URL costs nothing here (the model fetches it). Costs are known from the rows
before anything is read, so the worker reads at most ATTACHMENT_BUDGET_BYTES per reply:

- the message being answered comes first: if its own attachments cost more than the
  budget, the reply fails with `attachments_too_large` (retrying cannot help);
- then the history, newest message first: each attachment that still fits is kept,
  each that does not is left out and named to the model as omitted.
"""

from __future__ import annotations

import base64
import codecs
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from agentfiles.data import blobs, file_rows
from agentfiles.logic import catalog
from agentfiles.logic.sniff import IMAGE_TYPES, PDF, TEXT_TYPES
from agentfiles.media import documents
from agentfiles.models.files import TEXT, DerivedObject, FileRecord
from agentfiles.models.messages import FilePart, ImagePart, MessageRecord, Part, TextPart
from agentfiles.observability import logger
from agentfiles.settings import ModelCapability, get_settings


class UnsupportedContent(Exception):
    """A reply that cannot be made from what it was given: it fails with `code` at
    once, without a retry."""

    def __init__(self, message: str, code: str = "unsupported_content") -> None:
        super().__init__(message)
        self.code = code


# (index of the message in the history, index of the part in the message)
PartAt = tuple[int, int]
Kind = Literal["image", "file"]

BUDGET = "over this reply's attachment budget"
REFUSED = "this model refused it"


@dataclass(frozen=True)
class Form:
    """How one attachment goes into this call, decided before anything is read.

    `how`: `url` (an image the model fetches), `image` (an image's bytes as a data URL),
    `pdf` (a `file` part), `document` (a document's extracted text), `text` (a text
    file's first bytes), `data` (a part's inline bytes), `note` (a text in its place)."""

    how: Literal["url", "image", "pdf", "document", "text", "data", "note"]
    kind: Kind
    name: str
    cost: int = 0  # attachment bytes it puts in the request
    key: str | None = None  # the object it is read from (or linked to)
    length: int = 0  # bytes to read from `key`
    media_type: str = ""
    total_size: int = 0  # the whole size of what is read (a text file is cut to its cap)
    text: str = ""  # `note`: what stands in for the attachment; `url`: an external URL


@dataclass(frozen=True)
class Sent:
    """An attachment as it went into the request: the history part it came from."""

    at: PartAt
    kind: Kind
    name: str


@dataclass
class Prompt:
    """One model call's messages, and which request parts carry which attachments (a
    refusal that points at `messages[i].content[j]` is traced back through `sent`)."""

    messages: list[dict[str, Any]]
    sent: dict[tuple[int, int], Sent] = field(default_factory=dict)
    omitted: dict[PartAt, str] = field(default_factory=dict)
    reads: dict[str, bytes] = field(default_factory=dict)  # object key -> the bytes read

    def attachments(self, kind: Kind | None = None) -> list[Sent]:
        """What went in as an image or a file (of `kind`, when given), in request order."""
        return [s for _, s in sorted(self.sent.items()) if kind is None or s.kind == kind]


@dataclass
class _Reads:
    """The objects one call reads: each once, however many parts name it."""

    read: dict[str, bytes] = field(default_factory=dict)

    def content(self, key: str, length: int) -> bytes:
        if key not in self.read:
            self.read[key] = blobs.read_range(key, length)
        return self.read[key]


def chat_messages(
    owner: str,
    history: list[MessageRecord],
    model: str,
    refused: frozenset[PartAt] = frozenset(),
    reads: dict[str, bytes] | None = None,
) -> Prompt:
    """The history (oldest first, the message being answered last) as `model` gets it.
    `refused`: parts this reply already saw refused (its retry leaves them out too);
    `reads`: objects an earlier try of this reply read (`Prompt.reads`), not read again."""
    file_ids = [p.file_id for m in history for p in m.content if not isinstance(p, TextPart) and p.file_id]
    files = file_rows.batch_get(owner, file_ids) if file_ids else {}
    capability = catalog.capability(model)
    image_name = catalog.geometry(model).derived_name
    last = len(history) - 1
    forms: dict[PartAt, Form] = {}
    omitted: dict[PartAt, str] = {}
    prompt = Prompt([], reads=reads if reads is not None else {})
    objects = _Reads(prompt.reads)
    for at, message in enumerate(history):
        if message.role != "user":
            continue  # a reply's files are named in its text, never sent
        refused_here = message.refused_by(model)
        for index, part in enumerate(message.content):
            if isinstance(part, TextPart):
                continue
            form = form_of(part, files, capability, image_name, current=at == last, reads=objects)
            if index in refused_here or (at, index) in refused:
                omitted[(at, index)] = REFUSED
            forms[(at, index)] = form
    omitted |= dict.fromkeys(left_out(forms, last, set(omitted)), BUDGET)
    if omitted:
        logger.info("attachments left out of the model call", extra={"omitted": len(omitted)})
    prompt.omitted = omitted
    for at, message in enumerate(history):
        prompt.messages.append(_chat_message(message, at, forms, prompt, objects, files))
    return prompt


# ---- what each attachment costs, and how it goes ------------------------------------


def _name(part: ImagePart | FilePart, files: dict[str, FileRecord]) -> str:
    record = files.get(part.file_id or "")
    return (
        getattr(part, "filename", None)
        or (record.filename if record else None)
        or part.file_id
        or part.url
        or "inline"
    )


def _kind(part: ImagePart | FilePart, media_type: str) -> Kind:
    return "image" if isinstance(part, ImagePart) or media_type in IMAGE_TYPES else "file"


def form_of(
    part: ImagePart | FilePart,
    files: dict[str, FileRecord],
    capability: ModelCapability,
    image_name: str,
    *,
    current: bool,
    reads: _Reads | None = None,
) -> Form:
    """How `part` goes to a model of `capability` (`current`: it is in the message being
    answered). Raises when a file it names is not available."""
    settings = get_settings()
    name = _name(part, files)
    if part.url:
        # External URLs pass through as given: images as image_url; a file the
        # Chat Completions API cannot fetch is named by its URL.
        if isinstance(part, ImagePart):
            if not capability.images:
                return _cannot_see(name)
            return Form("url", "image", name, text=part.url)
        return Form("note", "file", name, text=f"Attached file: {part.url}")
    if part.data:
        media_type = part.media_type or ""
        kind = _kind(part, media_type)
        if kind == "image" and not capability.images:
            return _cannot_see(name)
        if media_type == PDF and not capability.files:
            return _no_text(name, "it was sent inline, and no text was extracted from it")
        if media_type in documents.OFFICE_TYPES:
            return _no_text(name, "it was sent inline, and no text was extracted from it")
        size = len(part.data) * 3 // 4
        if media_type in TEXT_TYPES:
            size = min(size, settings.text_attachment_max_bytes)
        return Form("data", kind, name, cost=size, media_type=media_type)
    record = files.get(part.file_id or "")
    if record is None or not record.servable:
        # Not ready, or a drawn picture whose malware scan has not passed it yet: no
        # model URL is minted for what was not scanned.
        raise UnsupportedContent(f"file {part.file_id} is not available")
    media_type = record.media_type
    if media_type in IMAGE_TYPES:
        if not capability.images:
            return _cannot_see(name)
        copy = record.derived.get(image_name)
        key, size, copy_type = (
            (copy.key, copy.size, copy.media_type)
            if copy
            else (
                record.s3_key,
                record.size,
                media_type,
            )
        )
        if settings.url_mode != "inline":
            return Form("url", "image", name, key=key, media_type=copy_type)
        return Form("image", "image", name, cost=size, key=key, length=size, media_type=copy_type)
    text = record.derived.get(TEXT)
    if media_type == PDF:
        if capability.files and (current or text is None or _scanned(record, text, reads or _Reads())):
            # A scan's text says only that it has none: a model that reads files gets the
            # pages themselves, in the history too.
            return Form("pdf", "file", name, cost=record.size, key=record.s3_key, length=record.size)
        if text is None:
            return _no_text(name, "this model cannot read PDF files, and no text was extracted from it")
        return _document(name, text)
    if media_type in documents.OFFICE_TYPES:
        if text is None:
            return _no_text(name, "no text was extracted from it")
        return _document(name, text)
    if media_type in TEXT_TYPES:
        # Never more than the row's checked size, nor more of a text than its cap.
        length = min(record.size, settings.text_attachment_max_bytes)
        return Form(
            "text",
            "file",
            name,
            cost=length,
            key=record.s3_key,
            length=length,
            media_type=media_type,
            total_size=record.size,
        )
    raise UnsupportedContent(f"{media_type} files cannot be given to the model")


# A scan's stored text is its header line and, per page, a marker of about 40 bytes
# (`[page 12: image only, no text layer]`): a text larger than this is not a scan's.
_SCAN_BYTES_PER_PAGE = 64


def _scanned(record: FileRecord, text: DerivedObject, reads: _Reads) -> bool:
    """Whether a PDF is a scan (no text layer), told by its stored text's header; only a
    text small enough to be a scan's is read to tell (all of it: a few hundred bytes),
    and that read is the one the text would be sent from."""
    if text.size > documents.STORED_HEADER_MAX_BYTES + _SCAN_BYTES_PER_PAGE * max(record.pages or 1, 1):
        return False
    stored = reads.content(text.key, text.size)
    try:
        return bool(json.loads(stored.partition(b"\n")[0]).get("scanned"))
    except ValueError:
        return False


def _cannot_see(name: str) -> Form:
    return Form("note", "image", name, text=f"[image {name}: this model cannot see images]")


def _no_text(name: str, why: str) -> Form:
    return Form("note", "file", name, text=f"[file {name}: {why}]")


def _document(name: str, text: DerivedObject) -> Form:
    """A document's extracted text: what is read is at most the cap and its header; what
    is sent, at most the cap."""
    cap = get_settings().text_attachment_max_bytes
    return Form(
        "document",
        "file",
        name,
        cost=min(text.size, cap),
        key=text.key,
        length=min(text.size, documents.stored_prefix_bytes(cap)),
        total_size=text.size,
    )


def left_out(forms: dict[PartAt, Form], last: int, excluded: set[PartAt]) -> set[PartAt]:
    """The parts of older messages that do not fit the budget once the message being
    answered (history index `last`) and newer history are in. Raises when that message
    alone does not fit."""
    budget = get_settings().attachment_budget_bytes
    priced = {at: form.cost for at, form in forms.items() if at not in excluded and form.cost > 0}
    own = sum(price for (message, _), price in priced.items() if message == last)
    if own > budget:
        raise UnsupportedContent(
            f"this message's attachments come to {own} bytes; one reply can be given at most {budget} "
            "(send fewer or smaller files)",
            code="attachments_too_large",
        )
    left = budget - own
    omitted: set[PartAt] = set()
    # Newest message first; within a message, in order.
    for place in sorted((at for at in priced if at[0] != last), key=lambda at: (-at[0], at[1])):
        if priced[place] <= left:
            left -= priced[place]
        else:
            omitted.add(place)
    return omitted


# ---- building the messages ---------------------------------------------------------


def _chat_message(
    message: MessageRecord,
    at: int,
    forms: dict[PartAt, Form],
    prompt: Prompt,
    reads: _Reads,
    files: dict[str, FileRecord],
) -> dict[str, Any]:
    """One stored message as a Chat Completions message."""
    if message.role == "assistant":
        text = "\n".join(_assistant_text(p, files) for p in message.content)
        return {"role": "assistant", "content": text}
    content: list[dict[str, Any]] = []
    for index, part in enumerate(message.content):
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
            continue
        form = forms[(at, index)]
        why = prompt.omitted.get((at, index))
        if why is not None:
            content.append({"type": "text", "text": f"[{part.type} {form.name!r} omitted: {why}]"})
            continue
        built = _part(form, part, reads)
        if built["type"] in ("image_url", "file"):
            prompt.sent[(at, len(content))] = Sent((at, index), form.kind, form.name)
        content.append(built)
    return {"role": "user", "content": content}


def _assistant_text(part: Part, files: dict[str, FileRecord]) -> str:
    if isinstance(part, TextPart):
        return part.text
    record = files.get(part.file_id or "")
    return f"[{part.type}: {record.filename if record else part.file_id or part.url or 'inline'}]"


def _part(form: Form, part: ImagePart | FilePart, reads: _Reads) -> dict[str, Any]:
    settings = get_settings()
    if form.how == "note":
        return {"type": "text", "text": form.text}
    if form.how == "url":
        if form.text:
            return {"type": "image_url", "image_url": {"url": form.text}}
        assert form.key
        if settings.url_mode == "public":
            if not settings.public_base_url:
                raise UnsupportedContent("URL_MODE is public but PUBLIC_BASE_URL is not set")
            url = blobs.public_url(settings.public_base_url, form.key)
        else:
            url = blobs.presign_get(form.key, settings.model_url_ttl_seconds)
        return {"type": "image_url", "image_url": {"url": url}}
    if form.how == "data":
        content = base64.b64decode(part.data or "")
        filename = getattr(part, "filename", None) or "attachment"
        return bytes_part(form.media_type, content, filename, total_size=len(content))[0]
    assert form.key
    content = reads.content(form.key, form.length)
    if form.how == "image":
        return {"type": "image_url", "image_url": {"url": _data_url(form.media_type, content)}}
    if form.how == "pdf":
        return {"type": "file", "file": {"filename": form.name, "file_data": _data_url(PDF, content)}}
    if form.how == "document":
        cap = settings.text_attachment_max_bytes
        return {"type": "text", "text": documents.render_attachment(form.name, content, cap)}
    return bytes_part(form.media_type, content, form.name, total_size=form.total_size)[0]


def bytes_part(media_type: str, content: bytes, filename: str, *, total_size: int) -> list[dict[str, Any]]:
    """Bytes as a content part; `content` may be the first bytes of a text of `total_size`."""
    if media_type in IMAGE_TYPES:
        return [{"type": "image_url", "image_url": {"url": _data_url(media_type, content)}}]
    if media_type == PDF:
        return [{"type": "file", "file": {"filename": filename, "file_data": _data_url(PDF, content)}}]
    if media_type in TEXT_TYPES:
        cap = get_settings().text_attachment_max_bytes
        content = content[:cap]
        cut = total_size > len(content)
        # A character cut at the end of the range is dropped, not shown as garbage.
        text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(content, final=not cut)
        if cut:
            text += f"\n[... truncated: the first {len(content)} of {total_size} bytes]"
        return [{"type": "text", "text": f"Attached file {filename} ({media_type}):\n{text}"}]
    raise UnsupportedContent(f"{media_type} files cannot be given to the model")


def _data_url(media_type: str, content: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"
