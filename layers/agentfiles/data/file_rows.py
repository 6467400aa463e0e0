"""File and hash rows. Refcount changes live in `refcounts.py`, storage usage in
`usage.py`; the transactions here carry their items."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agentfiles.data import keys, table, usage_rows
from agentfiles.data.errors import ConditionFailed, Contention, QuotaExceeded, TransactionCancelled
from agentfiles.data.table import Delete, Put, Update, cond
from agentfiles.models.common import iso_from_ms
from agentfiles.models.files import DerivedObject, FileRecord, Rejection
from agentfiles.topology import GC_INDEX

# Tries of a registration: the default quota, then the quota the usage row showed.
_QUOTA_ATTEMPTS = 3


def _row(record: FileRecord) -> table.Row:
    # Born unreferenced: a vacuum candidate until a message takes a reference.
    shard = keys.gc_shard(record.id) if record.refcount == 0 else None
    return table.row_of(record, keys.file_key(record.owner, record.id), gcShard=shard)


def create(record: FileRecord) -> None:
    """ONE transaction: the new row (its id was just made) and the reservation of its
    declared size, only within the owner's quota. Assumed first: the default quota; a
    refusal shows the usage row as it was, and when that row holds an operator's
    override the registration is tried again under it. `QuotaExceeded` when the quota
    in force leaves no room."""
    quota = usage_rows.default_quota()
    for _ in range(_QUOTA_ATTEMPTS):
        try:
            table.transact(
                [
                    Put(_row(record), when=cond("attribute_not_exists(#pk)")),
                    usage_rows.reserve(record.owner, record.size, quota),
                ]
            )
            return
        except TransactionCancelled as cancelled:
            if not cancelled.failed(1):
                raise
            row = cancelled.reasons[1].item
            in_force = usage_rows.quota_of(row)
            if in_force != quota:
                quota = in_force
                continue
            raise QuotaExceeded(
                size=record.size,
                used_bytes=int(row.get("bytes", 0)) if row else 0,
                used_files=int(row.get("files", 0)) if row else 0,
                quota_bytes=quota.bytes,
                quota_files=quota.files,
            ) from cancelled
    raise Contention("the owner's quota kept changing while the file was registered")


def get(owner: str, file_id: str) -> FileRecord | None:
    row = table.get(keys.file_key(owner, file_id))
    return table.record_of(FileRecord, row) if row else None


def list_page(owner: str, limit: int, cursor: str | None) -> tuple[list[FileRecord], str | None]:
    rows, next_cursor = table.query_page(keys.owner_pk(owner), keys.file_sk(""), limit, cursor)
    return [table.record_of(FileRecord, row) for row in rows], next_cursor


def batch_get(owner: str, file_ids: list[str]) -> dict[str, FileRecord]:
    rows = table.batch_get(keys.file_key(owner, file_id) for file_id in file_ids)
    return {record.id: record for record in (table.record_of(FileRecord, row) for row in rows)}


@dataclass(frozen=True)
class HashEntry:
    """The owner's hash row: the ready file that stands for this content, or the threat
    the malware scan found in it (remembered, so the same bytes are refused at once)."""

    file_id: str | None
    threat: str | None = None


def find_by_hash(owner: str, sha256: str) -> HashEntry | None:
    row = table.get(keys.hash_key(owner, sha256))
    if not row:
        return None
    return HashEntry(file_id=row.get("fileId"), threat=row.get("threat"))


def remember_threat(owner: str, sha256: str, file_id: str, threat: str) -> None:
    """This owner's content held malware: its hash row says so from now on (replacing
    any file it stood for), so dedup never hands it out and a new registration of it is
    refused. No `fileId`, so no purge of a file removes it."""
    table.put(
        {"pk": keys.owner_pk(owner), "sk": keys.hash_sk(sha256), "threat": threat, "threatFileId": file_id}
    )


def touch_ready(owner: str, file_id: str, now_ms: int) -> FileRecord | None:
    """Move lastTouchedAt to now if the file is ready: a dedup hit is about to be
    attached, so it must survive the vacuum's grace period from this moment."""
    try:
        row = table.update(
            keys.file_key(owner, file_id),
            set={"lastTouchedAt": now_ms},
            when=cond("#status = :ready", ready="ready"),
            returns="new",
        )
    except ConditionFailed:
        return None
    return table.record_of(FileRecord, row) if row else None


def _hash_put(owner: str, sha256: str, file_id: str, replaces: str | None) -> Put:
    row = {"pk": keys.owner_pk(owner), "sk": keys.hash_sk(sha256), "fileId": file_id}
    if replaces:
        return Put(row, when=cond("#fileId = :old", old=replaces))
    return Put(row, when=cond("attribute_not_exists(#pk) OR #fileId = :self", self=file_id))


@dataclass(frozen=True)
class Described:
    """What the check learnt and made from a file, recorded as it becomes ready."""

    width: int | None = None
    height: int | None = None
    pages: int | None = None
    derived: dict[str, DerivedObject] = field(default_factory=dict)

    def attributes(self) -> dict[str, Any]:
        values: dict[str, Any] = {"width": self.width, "height": self.height, "pages": self.pages}
        if self.derived:
            values["derived"] = {
                name: item.model_dump(mode="json", by_alias=True, exclude_none=True)
                for name, item in self.derived.items()
            }
        return {name: value for name, value in values.items() if value is not None}


def mark_ready(
    record: FileRecord,
    sha256: str,
    etag: str,
    now_ms: int,
    described: Described | None = None,
    *,
    before_scan: bool = False,
) -> bool:
    """pending → ready, with what the check made from the file (in the same write, so a
    ready row names every derived object), and point the owner's hash row at this file
    unless another ready file already stands for this content. Returns False when the
    file was no longer pending, or its malware scan has not passed it yet (then
    `record_check` keeps the check's findings for the scan's result). `before_scan`: ready
    whatever the scan says so far (a picture a model drew; no URL is minted for it until
    its scan passed)."""
    scan_passed = "" if before_scan else " AND (attribute_not_exists(#scan) OR #scan = :passed)"
    ready = Update(
        keys.file_key(record.owner, record.id),
        set={
            "status": "ready",
            "sha256": sha256,
            "etag": etag,
            "updatedAt": iso_from_ms(now_ms),
            "lastTouchedAt": now_ms,
            **(described.attributes() if described else {}),
        },
        remove=["uploadExpiresAt"],
        when=cond(
            f"#status = :pending{scan_passed}",
            pending="pending",
            **({} if before_scan else {"passed": "passed"}),
        ),
    )
    return _settle_ready(record.owner, record.id, sha256, ready)


def record_check(
    record: FileRecord, sha256: str, etag: str, now_ms: int, described: Described | None = None
) -> bool:
    """The upload check passed a file whose malware scan is still under way: its
    findings go on the row (still pending, so no URL and no reference), and the scan's
    result makes it ready. False when the scan's result came first (or the file is no
    longer pending)."""
    try:
        table.update(
            keys.file_key(record.owner, record.id),
            set={
                "sha256": sha256,
                "etag": etag,
                "checkedAt": now_ms,
                "updatedAt": iso_from_ms(now_ms),
                **(described.attributes() if described else {}),
            },
            when=cond("#status = :pending AND #scan = :scanning", pending="pending", scanning="scanning"),
        )
    except ConditionFailed:
        return False
    return True


ScanPassed = Literal["waiting_for_check", "ready", "passed", "unchanged"]


def record_scan_passed(owner: str, file_id: str, result: str, now_ms: int) -> ScanPassed:
    """The malware scan passed the file (`result` as the scanner said it). Before the
    upload check: recorded, and the check's own write makes it ready. After it: ready
    now, from the findings the check left on the row. A picture stored ready at once:
    servable from now on. Anything else (another result already recorded, a file gone
    or settled) changes nothing: a duplicate or late event."""
    key = keys.file_key(owner, file_id)
    passed = {"scan": "passed", "scanResult": result, "updatedAt": iso_from_ms(now_ms)}
    try:
        table.update(
            key,
            set=passed,
            when=cond(
                "#status = :pending AND #scan = :scanning AND attribute_not_exists(#checkedAt)",
                pending="pending",
                scanning="scanning",
            ),
        )
        return "waiting_for_check"
    except ConditionFailed as failed:
        row = failed.item
    if not row or row.get("scan") != "scanning":
        return "unchanged"
    if row.get("status") == "ready":
        try:
            table.update(
                key,
                set=passed,
                when=cond("#status = :ready AND #scan = :scanning", ready="ready", scanning="scanning"),
            )
        except ConditionFailed:
            return "unchanged"
        return "passed"
    if row.get("status") != "pending" or "checkedAt" not in row:
        return "unchanged"
    ready = Update(
        key,
        set={**passed, "status": "ready", "lastTouchedAt": now_ms},
        remove=["uploadExpiresAt"],
        when=cond(
            "#status = :pending AND #scan = :scanning AND attribute_exists(#checkedAt)",
            pending="pending",
            scanning="scanning",
        ),
    )
    return "ready" if _settle_ready(owner, file_id, row.get("sha256") or "", ready) else "unchanged"


def reject_scanned(
    record: FileRecord, rejection: Rejection, result: str, now_ms: int, *, threat: bool
) -> bool:
    """The malware scan refused the file (a threat, or what could not be scanned under
    a reject policy): rejected, its reservation released in the same transaction. A
    file waiting for its scan only: pending (checked or not), or a picture stored
    ready at once; a `threat` also rejects a file stored before scanning was on. False
    when it was not waiting (a duplicate or late event)."""
    scanning = "(attribute_not_exists(#scan) OR #scan = :scanning)" if threat else "#scan = :scanning"
    rejected = Update(
        keys.file_key(record.owner, record.id),
        set={
            "status": "rejected",
            "rejection": rejection.dump(),
            "scanResult": result,
            "updatedAt": iso_from_ms(now_ms),
            "lastTouchedAt": now_ms,
            "gcShard": keys.gc_shard(record.id),
        },
        when=cond(
            f"#status IN (:pending, :ready) AND {scanning} AND #size = :size",
            pending="pending",
            ready="ready",
            scanning="scanning",
            size=record.size,
        ),
    )
    try:
        table.transact([rejected, usage_rows.release(record.owner, record.size)])
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            return False
        raise
    return True


def _settle_ready(owner: str, file_id: str, sha256: str, ready: Update) -> bool:
    """Write `ready` (the file row becoming ready) with the owner's hash row pointing at
    it, unless another ready file already stands for this content (or the content is
    remembered as a threat). False when `ready`'s own condition did not hold."""
    if not sha256:
        try:
            table.transact([ready])
        except TransactionCancelled:
            return False
        return True
    replaces: str | None = None
    for _ in range(4):
        try:
            table.transact([ready, _hash_put(owner, sha256, file_id, replaces)])
            return True
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return False
        entry = find_by_hash(owner, sha256)
        holder = entry.file_id if entry else None
        holder_record = get(owner, holder) if holder else None
        if (entry and entry.threat) or (holder_record and holder_record.status == "ready"):
            # The content already has its ready file; this one is ready too (its
            # owner holds the id) while dedup keeps answering with the first.
            try:
                table.transact([ready])
            except TransactionCancelled:
                return False
            return True
        replaces = holder
    raise RuntimeError(f"could not settle the hash row for file {file_id}")


def mark_rejected(record: FileRecord, rejection: Rejection, now_ms: int) -> bool:
    """pending → rejected, releasing the file's reservation in the same transaction.
    Returns False when the file was no longer pending."""
    owner, file_id = record.owner, record.id
    rejected = Update(
        keys.file_key(owner, file_id),
        set={
            "status": "rejected",
            "rejection": rejection.dump(),
            "updatedAt": iso_from_ms(now_ms),
            "lastTouchedAt": now_ms,
            "gcShard": keys.gc_shard(file_id),
        },
        when=cond("#status = :pending AND #size = :size", pending="pending", size=record.size),
    )
    try:
        table.transact([rejected, usage_rows.release(owner, record.size)])
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            return False
        raise
    return True


def tombstone(
    owner: str, file_id: str, now_ms: int, touched_before_ms: int | None = None
) -> FileRecord | None:
    """Mark an unreferenced file `deleting`. From here no message can take a
    reference (increments require `ready`), so the object and rows can go.
    With `touched_before_ms` (the vacuum's grace cutoff) the file must also be
    untouched since then, and a pending one must have an upload URL that expired
    by then. Returns None when the file is referenced, touched too recently, still
    open for upload, or gone. A file already `deleting` is returned as is, so a
    crashed purge can finish."""
    values: dict[str, Any] = {"zero": 0, "ready": "ready", "pending": "pending", "rejected": "rejected"}
    if touched_before_ms is None:
        # An explicit delete: no grace, and a pending upload may be abandoned at once.
        condition = "#refcount = :zero AND #status IN (:ready, :pending, :rejected)"
    else:
        # The vacuum: untouched since the cutoff, and a pending file only once its
        # upload URL expired a grace period ago (an upload may still be under way).
        condition = (
            "#refcount = :zero AND #lastTouchedAt <= :cutoff AND (#status IN (:ready, :rejected) OR "
            "(#status = :pending AND "
            "(attribute_not_exists(#uploadExpiresAt) OR #uploadExpiresAt <= :cutoff)))"
        )
        values["cutoff"] = touched_before_ms
    try:
        row = table.update(
            keys.file_key(owner, file_id),
            set={"status": "deleting", "updatedAt": iso_from_ms(now_ms)},
            when=cond(f"attribute_exists(#pk) AND ({condition})", **values),
            returns="new",
        )
    except ConditionFailed as failed:
        if failed.item and failed.item.get("status") == "deleting":
            return table.record_of(FileRecord, failed.item)
        return None
    return table.record_of(FileRecord, row) if row else None


def delete_hash_if_points_at(owner: str, sha256: str, file_id: str) -> None:
    try:
        table.delete(keys.hash_key(owner, sha256), when=cond("#fileId = :id", id=file_id))
    except ConditionFailed:
        pass  # gone already, or another file stands for this content now


def delete_tombstoned(record: FileRecord) -> None:
    """Delete the row of a tombstoned file; a counted one (never rejected) releases its
    size in the same transaction. The record is the tombstoned row, as `tombstone`
    returned it."""
    key = keys.file_key(record.owner, record.id)
    if record.rejection is not None:
        # Its reservation went when it was rejected.
        try:
            table.delete(
                key, when=cond("#status = :deleting AND attribute_exists(#rejection)", deleting="deleting")
            )
        except ConditionFailed:
            pass  # an earlier run deleted it already
        return
    counted = Delete(
        key,
        when=cond(
            "#status = :deleting AND attribute_not_exists(#rejection) AND #size = :size",
            deleting="deleting",
            size=record.size,
        ),
    )
    try:
        table.transact([counted, usage_rows.release(record.owner, record.size)])
    except TransactionCancelled as cancelled:
        if not cancelled.failed(0):
            raise
        # An earlier run deleted it already.


# ---- the vacuum's candidates -------------------------------------------------


@dataclass(frozen=True)
class GcCandidate:
    """A file carrying the gc marker, as the (keys-only) index shows it: possibly
    stale, so every decision about it is a conditional write on the file row."""

    owner: str
    file_id: str
    last_touched_at: int


@dataclass(frozen=True)
class GcPage:
    candidates: list[GcCandidate]
    # Where the next page of this shard starts; None when the shard is read to its end.
    next_start: dict[str, Any] | None


def gc_candidates(shard: str, touched_before_ms: int, limit: int, start: dict[str, Any] | None) -> GcPage:
    """One page of a gc shard: files whose marker is set and whose lastTouchedAt is
    at or before the cutoff, oldest first. Live (referenced) files carry no marker,
    so they are never read here."""
    page = table.index_page(GC_INDEX, shard, touched_before_ms, limit, start)
    candidates = [
        GcCandidate(
            owner=row["pk"].removeprefix(keys.owner_pk("")),
            file_id=row["sk"].removeprefix(keys.file_sk("")),
            last_touched_at=int(row[GC_INDEX.sort_key]),
        )
        for row in page.rows
    ]
    return GcPage(candidates, page.next_start)


def clear_gc_marker(owner: str, file_id: str) -> bool:
    """Take a referenced file out of the gc index (a decrement left the marker on a
    file that still has references). False when the file is unreferenced or gone:
    then it stays a candidate."""
    try:
        table.update(
            keys.file_key(owner, file_id), remove=["gcShard"], when=cond("#refcount > :zero", zero=0)
        )
    except ConditionFailed:
        return False
    return True
