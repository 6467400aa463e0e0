"""S3: presigned URLs, the object checks of the upload trigger, stores and deletes."""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from agentfiles.data import clients
from agentfiles.settings import get_settings
from agentfiles.topology import CHECKED_TAG

SNIFF_BYTES = 4096
_HASH_CHUNK = 1024 * 1024


def _bucket() -> str:
    return get_settings().bucket_name


def sha256_hex_to_b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def sha256_b64_to_hex(sha256_b64: str) -> str:
    return base64.b64decode(sha256_b64).hex()


def presign_put(
    key: str, media_type: str, size: int, sha256_hex: str | None, expires_in: int
) -> tuple[str, dict]:
    """A write-once PUT URL: content type, length and (when given) checksum are signed,
    and `If-None-Match: *` stops a second PUT from replacing checked bytes."""
    params: dict[str, Any] = {
        "Bucket": _bucket(),
        "Key": key,
        "ContentType": media_type,
        "ContentLength": size,
        "IfNoneMatch": "*",
    }
    headers = {"Content-Type": media_type, "If-None-Match": "*"}
    if sha256_hex:
        checksum = sha256_hex_to_b64(sha256_hex)
        params["ChecksumSHA256"] = checksum
        headers["x-amz-checksum-sha256"] = checksum
    url = clients.s3().generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
    return url, headers


# RFC 5987's attr-char besides letters and digits: what `filename*` may carry unescaped.
_ATTR_CHARS = "!#$&+-.^_`|~"


def _header_safe(filename: str) -> str:
    # A header value shown to a person: no control character may pass (a line break
    # would be a header), nor a format or bidi control ("invoice\u202etxt.exe" shows as
    # "invoiceexe.txt"), even from a row written before filenames were checked.
    return "".join(
        "_" if ord(c) < 0x20 or c == "\x7f" or unicodedata.category(c) == "Cf" or c in "\u2028\u2029" else c
        for c in filename
    )


def content_disposition(filename: str, attachment: bool) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the exact name as
    `filename*=UTF-8''...`, which every current browser prefers."""
    safe = _header_safe(filename)
    ascii_name = safe.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe=_ATTR_CHARS)}"


def presign_get(
    key: str,
    expires_in: int,
    filename: str | None = None,
    attachment: bool = False,
    content_type: str | None = None,
) -> str:
    """A GET URL. With `content_type`, S3 answers with that type whatever the object
    says (the type the check accepted, not one an overwrite could set); with `filename`,
    a Content-Disposition that names it, as an attachment or inline."""
    params: dict[str, Any] = {"Bucket": _bucket(), "Key": key}
    if content_type:
        params["ResponseContentType"] = content_type
    if filename and (attachment or content_type):
        params["ResponseContentDisposition"] = content_disposition(filename, attachment)
    return clients.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str
    content_type: str | None
    sha256_hex: str | None  # reported by S3 only when it verified a checksum on upload


def head(key: str) -> ObjectHead | None:
    client = clients.s3()
    try:
        response = client.head_object(Bucket=_bucket(), Key=key, ChecksumMode="ENABLED")
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    checksum = response.get("ChecksumSHA256")
    # A multipart object reports a checksum of checksums ("...-N"), not of the content.
    sha256_hex = sha256_b64_to_hex(checksum) if checksum and "-" not in checksum else None
    return ObjectHead(
        size=int(response["ContentLength"]),
        etag=response.get("ETag", "").strip('"'),
        content_type=response.get("ContentType"),
        sha256_hex=sha256_hex,
    )


def read_prefix(key: str, etag: str, length: int = SNIFF_BYTES) -> bytes:
    """The first `length` bytes, in one ranged GET, of exactly the version HEAD saw."""
    response = clients.s3().get_object(Bucket=_bucket(), Key=key, Range=f"bytes=0-{length - 1}", IfMatch=etag)
    return response["Body"].read()


def hash_object(key: str, etag: str) -> tuple[str, int]:
    """SHA-256 of the whole object, streamed: the fallback where S3 did not verify it."""
    response = clients.s3().get_object(Bucket=_bucket(), Key=key, IfMatch=etag)
    digest = hashlib.sha256()
    total = 0
    for chunk in response["Body"].iter_chunks(_HASH_CHUNK):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def read_object(key: str, etag: str) -> bytes:
    """The whole object, in one GET, of exactly the version HEAD saw (the caller bounds
    its size first: the check reads only objects within the upload limit)."""
    return clients.s3().get_object(Bucket=_bucket(), Key=key, IfMatch=etag)["Body"].read()


def read_range(key: str, length: int) -> bytes:
    """At most the first `length` bytes, in one ranged GET: what is read is bounded by
    the caller, never by the object's size."""
    if length <= 0:
        return b""
    return clients.s3().get_object(Bucket=_bucket(), Key=key, Range=f"bytes=0-{length - 1}")["Body"].read()


def put(key: str, data: bytes, media_type: str, sha256_hex: str) -> str:
    """Store bytes in hand, already checked (so tagged as such); returns the object's ETag."""
    response = clients.s3().put_object(
        Bucket=_bucket(),
        Key=key,
        Body=data,
        ContentType=media_type,
        ChecksumSHA256=sha256_hex_to_b64(sha256_hex),
        Tagging="=".join(CHECKED_TAG),
    )
    return response["ETag"].strip('"')


def put_derived(key: str, data: bytes, media_type: str) -> str:
    """Store something made from a checked file (see `keys.derived_key`); returns its
    ETag. Made by the server from checked bytes, so it is tagged checked as well."""
    response = clients.s3().put_object(
        Bucket=_bucket(),
        Key=key,
        Body=data,
        ContentType=media_type,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        Tagging="=".join(CHECKED_TAG),
    )
    return response["ETag"].strip('"')


def mark_checked(key: str, *, keep_others: bool = False) -> None:
    """Tag an object whose bytes passed their check (what public URLs may serve). With
    `keep_others` (a malware scanner tags the same objects), the tags it already has
    are kept: S3 replaces an object's whole tag set on every write."""
    if keep_others:
        ensure_tags(key, {CHECKED_TAG[0]: CHECKED_TAG[1]})
        return
    clients.s3().put_object_tagging(
        Bucket=_bucket(), Key=key, Tagging={"TagSet": [{"Key": CHECKED_TAG[0], "Value": CHECKED_TAG[1]}]}
    )


def object_tags(key: str) -> dict[str, str]:
    response = clients.s3().get_object_tagging(Bucket=_bucket(), Key=key)
    return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}


def ensure_tags(key: str, wanted: dict[str, str]) -> None:
    """Give the object these tags, keeping its others; no write when it has them all.
    A missing object is left alone (it was deleted meanwhile)."""
    client = clients.s3()
    try:
        tags = object_tags(key)
    except client.exceptions.NoSuchKey:
        return
    if all(tags.get(name) == value for name, value in wanted.items()):
        return
    merged = {**tags, **wanted}
    client.put_object_tagging(
        Bucket=_bucket(),
        Key=key,
        Tagging={"TagSet": [{"Key": name, "Value": value} for name, value in merged.items()]},
    )


def delete(key: str) -> None:
    """Idempotent: deleting a missing key succeeds."""
    clients.s3().delete_object(Bucket=_bucket(), Key=key)


def delete_all(object_keys: list[str]) -> None:
    """Delete each key (missing ones too). One DELETE per key rather than one
    DeleteObjects: a file has a handful of objects, S3 charges for neither, and a single
    key's call needs no Content-MD5 nor per-key error handling."""
    for key in dict.fromkeys(object_keys):
        delete(key)


def list_keys(prefix: str, limit: int = 1000) -> list[str]:
    """The first keys under `prefix` (an erasure deletes them, then lists again)."""
    response = clients.s3().list_objects_v2(Bucket=_bucket(), Prefix=prefix, MaxKeys=limit)
    return [item["Key"] for item in response.get("Contents", [])]


def delete_keys(object_keys: list[str]) -> int:
    """Delete up to 1000 keys in one DeleteObjects (an erasure's pages). Returns how many
    S3 deleted; a key it could not delete stays listed for the next page."""
    if not object_keys:
        return 0
    response = clients.s3().delete_objects(
        Bucket=_bucket(), Delete={"Objects": [{"Key": key} for key in object_keys], "Quiet": True}
    )
    return len(object_keys) - len(response.get("Errors", []))


def iter_object(key: str, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """An object's bytes, a chunk at a time (an export copies originals without holding one)."""
    body = clients.s3().get_object(Bucket=_bucket(), Key=key)["Body"]
    try:
        yield from body.iter_chunks(chunk)
    finally:
        body.close()


def read_if_exists(key: str) -> bytes | None:
    try:
        return clients.s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def put_private(key: str, data: bytes, media_type: str) -> None:
    """An object only the system reads (an export's progress)."""
    clients.s3().put_object(Bucket=_bucket(), Key=key, Body=data, ContentType=media_type)


def start_multipart(key: str, media_type: str) -> str:
    return str(
        clients.s3().create_multipart_upload(Bucket=_bucket(), Key=key, ContentType=media_type)["UploadId"]
    )


def upload_part(key: str, upload_id: str, number: int, data: bytes) -> str:
    response = clients.s3().upload_part(
        Bucket=_bucket(), Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )
    return str(response["ETag"])


def complete_multipart(key: str, upload_id: str, etags: list[str]) -> None:
    parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
    clients.s3().complete_multipart_upload(
        Bucket=_bucket(), Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def abort_multipart(key: str, upload_id: str) -> None:
    try:
        clients.s3().abort_multipart_upload(Bucket=_bucket(), Key=key, UploadId=upload_id)
    except ClientError:
        pass  # already completed or aborted; the bucket's lifecycle rule removes leftovers


def public_url(base_url: str, key: str) -> str:
    return f"{base_url.rstrip('/')}/{quote(key)}"
