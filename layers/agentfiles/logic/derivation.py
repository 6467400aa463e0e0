"""What the upload check makes from a file, once: a document's text (and its pages); an
image's upright size, one copy per model geometry (`catalog.image_geometries()`) and a
thumbnail.

Made from the checked bytes in hand, stored beside the original at
`keys.derived_key(owner, file_id, name)` and recorded on the file row in the same write
that marks it ready, so a ready file's row names every object it has. Derived objects
count in no quota (the original's size is what the owner stores), and every path that
deletes a file deletes them: `object_keys` names them all, those the row records and
those a check cut short may have stored before it could record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentfiles.data import blobs, keys
from agentfiles.logic import catalog
from agentfiles.logic.sniff import DOCUMENT_TYPES, IMAGE_TYPES
from agentfiles.models.files import TEXT, THUMBNAIL, DerivedObject, FileRecord, Rejection
from agentfiles.settings import get_settings

TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Made:
    """One object made from a file, not yet stored."""

    name: str
    data: bytes
    media_type: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Derivation:
    """Everything made from one file, and what the row records about it."""

    made: list[Made] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    pages: int | None = None


class NotDerivable(Exception):
    """The bytes passed their type check but cannot be read as that type."""

    def __init__(self, rejection: Rejection):
        super().__init__(rejection.message)
        self.rejection = rejection


def reads_whole(media_type: str) -> bool:
    """Whether the check reads the whole object (to make something from it) rather than
    its first bytes only."""
    return media_type in DOCUMENT_TYPES or media_type in IMAGE_TYPES


def derive(media_type: str, data: bytes, *, generated: bool = False) -> Derivation:
    """What to make from `data`, a checked file of `media_type`; `NotDerivable` with the
    file's rejection when it does not read. A picture a model `generated` gets its
    thumbnail only: it is sent as it was made."""
    if media_type in DOCUMENT_TYPES:
        return _document(media_type, data)
    if media_type in IMAGE_TYPES:
        return _image(media_type, data, generated)
    return Derivation()


def _image(media_type: str, data: bytes, generated: bool) -> Derivation:
    from agentfiles.media import images

    geometries = () if generated else _geometries()
    try:
        checked = images.check_image(data, media_type, get_settings().image_max_pixels, geometries)
    except images.ImageRejected as refused:
        raise NotDerivable(Rejection(code=refused.code, message=refused.message)) from refused
    copies = {**checked.derivatives, THUMBNAIL: checked.thumbnail}
    made = [
        Made(name, copy.data, copy.media_type, copy.width, copy.height)
        for name, copy in sorted(copies.items())
    ]
    return Derivation(made=made, width=checked.width, height=checked.height)


def _geometries() -> list[tuple[int | None, int | None]]:
    # Sorted: the same configuration makes the same copies in the same order.
    return sorted(
        ((g.max_side, g.max_short_side) for g in catalog.image_geometries()),
        key=lambda g: (g[0] or 0, g[1] or 0),
    )


def _document(media_type: str, data: bytes) -> Derivation:
    from agentfiles.media import documents

    try:
        document = documents.read_document(data, media_type)
    except documents.DocumentRejected as refused:
        raise NotDerivable(Rejection(code=refused.code, message=refused.message)) from refused
    # Pages of a PDF, slides of a presentation; a Word file has no fixed pages and a
    # workbook's sheets are not pages.
    pages = document.count if document.unit in ("page", "slide") else None
    return Derivation(made=[Made(TEXT, documents.stored_text(document), TEXT_MEDIA_TYPE)], pages=pages)


def store(owner: str, file_id: str, derivation: Derivation) -> dict[str, DerivedObject]:
    """Store what was made, each under its derived key; what the row records."""
    stored = {}
    for made in derivation.made:
        key = keys.derived_key(owner, file_id, made.name)
        blobs.put_derived(key, made.data, made.media_type)
        stored[made.name] = DerivedObject(
            key=key, media_type=made.media_type, size=len(made.data), width=made.width, height=made.height
        )
    return stored


def names_made_for(media_type: str | None) -> list[str]:
    """The names the check makes for a file of `media_type` (every name when the type is
    not known: an object no row accounts for)."""
    image_names = [THUMBNAIL, *(geometry.derived_name for geometry in catalog.image_geometries())]
    if media_type is None:
        return [TEXT, *image_names]
    if media_type in DOCUMENT_TYPES:
        return [TEXT]
    if media_type in IMAGE_TYPES:
        return image_names
    return []


def object_keys(owner: str, file_id: str, record: FileRecord | None) -> list[str]:
    """Every object a file may have besides its original: those its row records, and
    those the check makes for its type (stored by a check that stopped before its row
    said so). Deleting a key that does not exist succeeds, so all are deleted."""
    recorded = record.derived_keys() if record else []
    possible = [
        keys.derived_key(owner, file_id, name)
        for name in names_made_for(record.media_type if record else None)
    ]
    return list(dict.fromkeys([*recorded, *possible]))


def delete_file_objects(owner: str, file_id: str, record: FileRecord | None) -> None:
    """Delete a file's original and everything made from it."""
    blobs.delete_all([keys.object_key(owner, file_id), *object_keys(owner, file_id, record)])
