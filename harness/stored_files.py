"""Ready files as the upload check leaves them once it has made their derived objects:
the original under `files/`, each derived object under `derived/`, and the row naming
them in `derived`, written straight to S3 and the table (the tests and benchmarks of
model calls do not run the upload check). The derived objects are made here from real
files as the check makes them: a document's text by `documents.read_document` and
`stored_text`, an image's model copy by Pillow (upright, no metadata, fitted to a
geometry)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, ImageOps

from agentfiles.data import keys, table
from agentfiles.ids import new_ulid
from agentfiles.logic.catalog import Geometry
from agentfiles.media import documents
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.files import TEXT, DerivedObject, FileRecord
from harness import samples

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "documents"
DEFAULT_GEOMETRY = Geometry(2048, 768)


def fixture(name: str) -> bytes:
    """A committed sample: a document, or `sources/receipt.jpg` (a real JPEG, 827x1169)."""
    return (FIXTURES / name).read_bytes()


def document_text(data: bytes, media_type: str) -> bytes:
    """The stored text of a document, as the upload check stores it."""
    return documents.stored_text(documents.read_document(data, media_type))


def model_copy(data: bytes, geometry: Geometry = DEFAULT_GEOMETRY) -> tuple[bytes, int, int]:
    """An image's copy for models of `geometry`: upright, no metadata, within
    `max_side` x `max_side` then `max_short_side` on its short side; a JPEG."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = image.size
    scale = 1.0
    if geometry.max_side:
        scale = min(scale, geometry.max_side / max(width, height))
    if geometry.max_short_side:
        scale = min(scale, geometry.max_short_side / min(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), *image.size


def stored_file(
    aws,
    data: bytes,
    media_type: str,
    filename: str,
    *,
    derived: Mapping[str, tuple[bytes, str]] | None = None,
    owner: str = "alice",
    width: int | None = None,
    height: int | None = None,
    pages: int | None = None,
) -> FileRecord:
    """A ready file with `derived` objects (name -> (bytes, media type))."""
    file_id = new_ulid()
    bucket = aws.resources.bucket_name
    key = keys.object_key(owner, file_id)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=media_type)
    made: dict[str, DerivedObject] = {}
    for name, (content, content_type) in (derived or {}).items():
        derived_key = keys.derived_key(owner, file_id, name)
        aws.s3.put_object(Bucket=bucket, Key=derived_key, Body=content, ContentType=content_type)
        copy_size = (
            Image.open(io.BytesIO(content)).size if content_type.startswith("image/") else (None, None)
        )
        made[name] = DerivedObject(
            key=derived_key,
            media_type=content_type,
            size=len(content),
            width=copy_size[0],
            height=copy_size[1],
        )
    now = now_ms()
    record = FileRecord(
        id=file_id,
        owner=owner,
        filename=filename,
        media_type=media_type,
        size=len(data),
        sha256=samples.sha256(data),
        status="ready",
        created_at=iso_from_ms(now),
        updated_at=iso_from_ms(now),
        last_touched_at=now,
        s3_key=key,
        width=width,
        height=height,
        pages=pages,
        derived=made,
    )
    table.put(table.row_of(record, keys.file_key(owner, file_id)))
    return record


def document(
    aws, name: str, media_type: str, *, with_text: bool = True, data: bytes | None = None
) -> FileRecord:
    """A committed document (or `data`, named `name`) as a ready file, with its extracted
    text (`with_text`) or as a file from before text was extracted."""
    data = fixture(name) if data is None else data
    derived = {TEXT: (document_text(data, media_type), "text/plain; charset=utf-8")} if with_text else {}
    extracted = documents.read_document(data, media_type)
    return stored_file(aws, data, media_type, name.rsplit("/", 1)[-1], derived=derived, pages=extracted.pages)


def image(
    aws, data: bytes, media_type: str, filename: str, *, geometry: Geometry | None = DEFAULT_GEOMETRY
) -> FileRecord:
    """An image as a ready file with its model copy for `geometry` (None: a file from
    before copies were made)."""
    with Image.open(io.BytesIO(data)) as opened:
        width, height = ImageOps.exif_transpose(opened).size
    derived = {}
    if geometry is not None:
        copy, _, _ = model_copy(data, geometry)
        derived[geometry.derived_name] = (copy, "image/jpeg")
    return stored_file(aws, data, media_type, filename, derived=derived, width=width, height=height)
