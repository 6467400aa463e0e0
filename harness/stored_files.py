"""Ready files written straight to S3 and the table, with the derived objects the upload
check makes (`logic.derivation`, run on the bytes: a document's text, an image's copy per
configured geometry and its thumbnail) or without them, as a file stored before derived
objects existed. The tests and benchmarks of model calls use them to have the same
content as a file of each era (uploads would deduplicate it) and files above the small
upload limit."""

from __future__ import annotations

from pathlib import Path

from agentfiles.data import keys, table
from agentfiles.ids import new_ulid
from agentfiles.logic import derivation
from agentfiles.logic.catalog import Geometry
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.files import FileRecord
from harness import samples

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# OpenAI's high-detail geometry, the default of MODEL_CAPABILITIES.
DEFAULT_GEOMETRY = Geometry(2048, 768)


def fixture(name: str) -> bytes:
    """A committed sample, by its path under tests/fixtures/ (`documents/report.pdf`)."""
    return (FIXTURES / name).read_bytes()


def stored_file(
    aws, data: bytes, media_type: str, filename: str, *, derived: bool = True, owner: str = "alice"
) -> FileRecord:
    """A ready file of `data`; with what the upload check makes from it (`derived`), or
    as a file from before: no derived objects, no size or pages on its row."""
    file_id = new_ulid()
    key = keys.object_key(owner, file_id)
    aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=key, Body=data, ContentType=media_type)
    made = derivation.derive(media_type, data) if derived else derivation.Derivation()
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
        width=made.width,
        height=made.height,
        pages=made.pages,
        derived=derivation.store(owner, file_id, made),
    )
    table.put(table.row_of(record, keys.file_key(owner, file_id)))
    return record


def document(aws, name: str, media_type: str, *, derived: bool = True) -> FileRecord:
    """A committed document of tests/fixtures/documents/ as a ready file."""
    return stored_file(
        aws, fixture(f"documents/{name}"), media_type, name.rsplit("/", 1)[-1], derived=derived
    )
