"""The malware scan: the second gate a file passes before it is `ready`.

With `MALWARE_SCAN` on, every original stored under `files/` is scanned (GuardDuty
Malware Protection for S3 on AWS, the emulated scanner locally), and its file becomes
ready only when both the upload check and the scan passed it. The two race, and either
may finish first; each settles the row with a conditional write, so whichever comes
second makes the file ready:

- the check first: its findings (hash, ETag, what it made) go on the still-pending row
  (`file_rows.record_check`); the scan's result then makes it ready from them;
- the scan first: its result goes on the row (`scan = passed`), and the check's own
  `mark_ready` (conditioned on it) makes it ready.

A threat (`THREATS_FOUND`) rejects the file with code `malware`, naming the threats: its
reservation is released in the same transaction, its object and everything made from it
deleted, and its hash remembered, so dedup never hands it out and the same bytes are
refused at registration. What the scanner could not scan (`UNSUPPORTED`, such as a
password-protected archive, `ACCESS_DENIED`, `FAILED`) is rejected `unscannable`, or
passed, as `MALWARE_UNSCANNABLE` says. A result for an unknown, deleted or settled file,
or one delivered twice, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentfiles.data import blobs, file_rows, keys
from agentfiles.data.file_rows import Described
from agentfiles.logic import derivation
from agentfiles.models.common import now_ms
from agentfiles.models.files import FileRecord, Rejection
from agentfiles.models.notifications import ScanResultEvent
from agentfiles.settings import get_settings
from agentfiles.topology import CLEAN, SCAN_TAG_KEY, UNSCANNABLE

MALWARE = "malware"
UNSCANNABLE_CODE = "unscannable"

_UNSCANNABLE_REASONS = {
    "UNSUPPORTED": "the malware scanner cannot scan this kind of file (a password-protected or "
    "encrypted archive, or one past the scanner's limits)",
    "ACCESS_DENIED": "the malware scanner was not allowed to read the file",
    "FAILED": "the malware scan failed",
}

ScanOutcome = Literal[
    "waiting_for_check", "ready", "passed", "rejected", "unchanged", "unknown_file", "not_a_file"
]
Settled = Literal["ready", "awaiting_scan", "lost"]


def scan_required() -> bool:
    """Whether files registered now wait for a malware scan."""
    return get_settings().malware_scan


def passes(result: str) -> bool:
    """Whether a scan result lets a file become ready."""
    return result == CLEAN or (result in UNSCANNABLE and get_settings().malware_unscannable == "allow")


def rejection_for(result: str, threats: list[str]) -> Rejection:
    if result == "THREATS_FOUND":
        named = ", ".join(threats) or "an unnamed threat"
        return Rejection(code=MALWARE, message=f"the malware scan found {named}; the file was deleted")
    reason = _UNSCANNABLE_REASONS.get(result, f"the malware scan answered {result}")
    return Rejection(
        code=UNSCANNABLE_CODE,
        message=f"{reason}, and files that cannot be scanned are not accepted; the file was deleted",
    )


def settle_checked(
    record: FileRecord, sha256: str, etag: str, described: Described | None, *, before_scan: bool = False
) -> Settled:
    """The upload check (or a store of bytes in hand) passed `record`: ready if its scan
    passed too (or none is needed, or `before_scan`: a picture a model drew, servable
    once scanned), else its findings wait on the row for the scan. `lost` when the file
    stopped being pending meanwhile."""
    for _ in range(3):
        if file_rows.mark_ready(record, sha256, etag, now_ms(), described, before_scan=before_scan):
            if record.scan is not None and not before_scan:
                _keep_scan_tag(record)
            return "ready"
        if record.scan != "scanning":
            return "lost"
        if file_rows.record_check(record, sha256, etag, now_ms(), described):
            return "awaiting_scan"
        # Neither held: the scan's result came in between (or the file is gone); the
        # next round tells which.
    return "lost"


def _keep_scan_tag(record: FileRecord) -> None:
    """The check tagged the object while the scanner did: each rewrote the whole tag set,
    and one may have dropped the other's tag. Whoever makes the file ready puts back what
    is missing, so a ready file's object is always readable."""
    settled = file_rows.get(record.owner, record.id)
    if settled is not None and settled.scan_result:
        blobs.ensure_tags(record.s3_key, {SCAN_TAG_KEY: settled.scan_result})


@dataclass(frozen=True)
class ScanSettlement:
    file_id: str
    outcome: ScanOutcome
    result: str
    reason: str | None = None


def settle_scan(event: ScanResultEvent) -> ScanSettlement:
    """Apply one scan result to the file whose original it names."""
    result = event.status
    scanned = event.detail.s3_object_details
    parsed = keys.parse_object_key(scanned.object_key)
    if parsed is None:
        # Not an original (only `files/` is scanned, but a sample or a rule may name anything).
        return ScanSettlement("", "not_a_file", result)
    owner, file_id = parsed
    record = file_rows.get(owner, file_id)
    if record is None or record.status == "deleting":
        # Deleted before its scan finished (its purge removes the object): nothing to do.
        return ScanSettlement(file_id, "unknown_file", result)
    if record.etag and scanned.e_tag and scanned.e_tag.strip('"') != record.etag:
        # A scan of bytes that are not the ones the check accepted.
        return ScanSettlement(file_id, "unchanged", result)
    now = now_ms()
    if passes(result):
        outcome = file_rows.record_scan_passed(owner, file_id, result, now)
        if outcome == "ready":
            # The check's tag write may have dropped the scanner's (see `_keep_scan_tag`).
            blobs.ensure_tags(record.s3_key, {SCAN_TAG_KEY: result})
        return ScanSettlement(file_id, outcome, result)
    rejection = rejection_for(result, event.threat_names)
    # A threat rejects any file still in use of its bytes; an unscannable result only one
    # that waited for this scan (not a file stored before scanning was turned on).
    if not file_rows.reject_scanned(record, rejection, result, now, threat=result == "THREATS_FOUND"):
        return ScanSettlement(file_id, "unchanged", result)
    derivation.delete_file_objects(owner, file_id, record)
    settled = file_rows.get(owner, file_id)
    sha256 = (settled.sha256 if settled else None) or record.sha256
    if result == "THREATS_FOUND" and sha256:
        file_rows.remember_threat(owner, sha256, file_id, ", ".join(event.threat_names) or result)
    return ScanSettlement(file_id, "rejected", result, rejection.code)
