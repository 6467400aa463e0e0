"""A message's content as it will be stored: parts checked against their declared
types, inline data over `INLINE_MAX_BYTES` stored as a file and referenced by id, the
attachments counted and the whole sized as DynamoDB sizes an item; and, for each file a
part names, the types the file must have for the part to be true (checked in the save's
transaction, where the file's reference is taken)."""

from __future__ import annotations

import base64

from agentfiles.errors import BadRequest, PayloadTooLarge, Unprocessable
from agentfiles.logic.files import check_media_type, decode_base64, store_bytes
from agentfiles.logic.sniff import IMAGE_TYPES, describe, matches, sniff
from agentfiles.models.messages import FilePart, ImagePart, Part, SaveMessageRequest, TextPart
from agentfiles.settings import get_settings

# A DynamoDB item holds at most 400 KB; content beyond this is refused.
MAX_CONTENT_BYTES = 350_000


def _inline_part(owner: str, part: ImagePart | FilePart, index: int) -> Part:
    """Check inline data; large data becomes a stored file referenced by id."""
    settings = get_settings()
    media_type = check_media_type(part.media_type or "")
    if isinstance(part, ImagePart) and media_type not in IMAGE_TYPES:
        raise Unprocessable(
            f"part {index}: an image part needs an image type, not {media_type}", code="invalid_part"
        )
    content = decode_base64(part.data or "")
    if len(content) > settings.inline_max_bytes:
        extension = media_type.rsplit("/", 1)[-1]
        filename = getattr(part, "filename", None) or f"part-{index}.{extension}"
        stored = store_bytes(owner, filename, media_type, content)
        # A dedup hit is the owner's file with these bytes: the part takes its checked type.
        update = {"data": None, "file_id": stored.record.id, "media_type": stored.record.media_type}
        return part.model_copy(update=update)
    sniffed = sniff(content, complete=True)
    if not content or not matches(media_type, sniffed):
        raise Unprocessable(
            f"part {index}: data is {describe(sniffed)}, not the declared {media_type}", code="type_mismatch"
        )
    return part.model_copy(update={"data": base64.b64encode(content).decode(), "media_type": media_type})


def prepare(owner: str, request: SaveMessageRequest) -> tuple[list[Part], list[str]]:
    settings = get_settings()
    parts = request.parts()
    large_inline = sum(
        1
        for p in parts
        if not isinstance(p, TextPart) and p.data and len(p.data) * 3 // 4 > settings.inline_max_bytes
    )
    named = {p.file_id for p in parts if not isinstance(p, TextPart) and p.file_id} | set(request.file_ids)
    if len(named) + large_inline > settings.max_attachments:
        raise BadRequest(
            f"a message may reference at most {settings.max_attachments} files", code="too_many_attachments"
        )
    prepared: list[Part] = []
    for index, part in enumerate(parts):
        if not isinstance(part, TextPart) and part.data:
            part = _inline_part(owner, part, index)
        elif not isinstance(part, TextPart) and part.media_type:
            part = part.model_copy(update={"media_type": check_media_type(part.media_type)})
        prepared.append(part)
    size = content_bytes(prepared)
    if size > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(
            f"message content is {size} bytes, over {MAX_CONTENT_BYTES}; send large data as files",
            code="message_too_large",
        )
    part_files = [p.file_id for p in prepared if not isinstance(p, TextPart) and p.file_id]
    return prepared, list(dict.fromkeys([*part_files, *request.file_ids]))


def content_bytes(parts: list[Part]) -> int:
    """The bytes the parts take in the message row, as counted on the owner's storage.
    Bytes, not characters: DynamoDB counts an item's UTF-8 size."""
    return sum(len(p.model_dump_json(by_alias=True, exclude_none=True).encode()) for p in parts)


def file_types(parts: list[Part]) -> dict[str, frozenset[str]]:
    """For each file a part names: the checked types that agree with every part naming
    it. An image part needs an image; a part's `mediaType` needs exactly that type; a
    file part without one takes the file's type, whatever it is. Parts that cannot all
    be true of one file are a 422 here, before anything is written."""
    wanted: dict[str, frozenset[str]] = {}
    for index, part in enumerate(parts):
        if isinstance(part, TextPart) or not part.file_id:
            continue
        types: frozenset[str] | None = IMAGE_TYPES if isinstance(part, ImagePart) else None
        if part.media_type:
            declared = frozenset({part.media_type})
            types = declared if types is None else declared & types
        if types is None:
            continue
        agreed = wanted.get(part.file_id, types) & types
        if not agreed:
            raise Unprocessable(
                f"part {index}: a {part.type} part cannot be {part.media_type or 'this file'}: "
                "its type, its file's and its other parts' must agree",
                code="part_type_mismatch",
                details={"fileId": part.file_id, "part": index},
            )
        wanted[part.file_id] = agreed
    return wanted
