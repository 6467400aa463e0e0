"""The shape of every AWS resource the system uses.

One source for the CDK stack (`infra/`) and the local stack (`agentfiles_local`), so
the two cannot drift: table keys and indexes, queues and their consumers, function
timeouts, schedules. Nothing here talks to AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expiresAt"


@dataclass(frozen=True)
class IndexSpec:
    """A sparse global secondary index: only items carrying `partition_key` are in it."""

    name: str
    partition_key: str
    sort_key: str
    sort_key_type: str = "N"


# Files whose refcount reached zero (or that never got a reference) carry `gcShard`;
# the vacuum reads only this index, so its cost follows garbage, not live files.
GC_INDEX = IndexSpec(name="gcIndex", partition_key="gcShard", sort_key="lastTouchedAt")
GC_SHARDS = 8

# Work that must finish or be retried (pending replies, threads being deleted)
# carries `sweepShard`; `sweepAt` is when it counts as stuck.
SWEEP_INDEX = IndexSpec(name="sweepIndex", partition_key="sweepShard", sort_key="sweepAt")
SWEEP_SHARDS = 4

INDEXES = (GC_INDEX, SWEEP_INDEX)

# Where objects live in the files bucket. What owners uploaded (and pictures a model
# drew for them) lives under `files/`: only those announce themselves to the upload
# check, and only those are scanned for malware. What the system makes from a file
# (a model's copy of an image, a thumbnail, a document's text) lives under `derived/`,
# exports under `exports/`. Each is then keyed by owner, so an owner's objects are
# three prefixes.
ORIGINALS_PREFIX = "files/"
DERIVED_PREFIX = "derived/"
EXPORTS_PREFIX = "exports/"
OBJECT_PREFIXES = (ORIGINALS_PREFIX, DERIVED_PREFIX, EXPORTS_PREFIX)
# How long an export's ZIP is kept (the bucket's lifecycle rule on `exports/`).
EXPORT_RETENTION_DAYS = 2

# The tag an object gets once its bytes passed their check (the upload trigger's, or the
# check of bytes stored at once). In public URL mode the bucket lets CloudFront read only
# objects that carry it, so pending and rejected bytes are never served.
CHECKED_TAG = ("checked", "true")

# GuardDuty Malware Protection for S3 (and, locally, the emulated scanner) tags each
# object it scanned with this key, one of `SCAN_RESULTS` as its value, and publishes a
# `SCAN_RESULT_DETAIL_TYPE` event from `SCAN_EVENT_SOURCE` onto the default bus, which
# a rule delivers to the `scans` queue.
SCAN_TAG_KEY = "GuardDutyMalwareScanStatus"
CLEAN = "NO_THREATS_FOUND"
SCAN_RESULTS = (CLEAN, "THREATS_FOUND", "UNSUPPORTED", "ACCESS_DENIED", "FAILED")
# What GuardDuty could not scan: accepted or refused as `MALWARE_UNSCANNABLE` says.
UNSCANNABLE = ("UNSUPPORTED", "ACCESS_DENIED", "FAILED")
SCAN_EVENT_SOURCE = "aws.guardduty"
SCAN_RESULT_DETAIL_TYPE = "GuardDuty Malware Protection Object Scan Result"

# The WebSocket API's stage: in its URL and its @connections endpoint, on AWS and locally.
WEBSOCKET_STAGE = "live"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    timeout_seconds: int
    memory_mb: int
    description: str
    needs_model: bool = False
    # Checks bearer tokens itself (PyJWT and cryptography): only the WebSocket authorizer.
    verifies_tokens: bool = False
    # Makes what is derived from files: reads documents into text (pypdf) and decodes
    # images (Pillow, pillow-heif). The upload check, and the API, which stores small
    # uploads and inline parts at once; the generate function gets them with its model
    # set, for the thumbnail of a picture it stores.
    reads_media: bool = False
    # Traced with X-Ray (Powertools Tracer): only where a cold start's extra
    # milliseconds are lost in the work itself.
    traced: bool = False


# Set on every function. Pydantic looks for plugins among the entry points of every
# installed distribution the first time it builds a model (a cold start's cost); we use none.
FUNCTION_ENVIRONMENT = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}

FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        FunctionSpec("api", 29, 512, "HTTP API: files, threads, messages", reads_media=True),
        # Reads a document or an image whole (up to MAX_UPLOAD_BYTES) and decodes it (up to
        # IMAGE_MAX_PIXELS): 1024 MB.
        FunctionSpec(
            "upload_trigger",
            60,
            1024,
            "Checks each uploaded object, makes what is derived from it, marks its file ready or rejected",
            reads_media=True,
        ),
        FunctionSpec(
            "generate",
            300,
            1024,
            "Answers messages with an OpenAI-compatible model",
            needs_model=True,
            traced=True,
        ),
        FunctionSpec("maintenance", 120, 512, "Removes deleted threads' messages in pages"),
        FunctionSpec("vacuum", 300, 512, "Deletes unreferenced files and re-sends stuck work"),
        FunctionSpec("websocket", 10, 256, "WebSocket API: connections and the threads they follow"),
        FunctionSpec(
            "websocket_authorizer",
            10,
            256,
            "Checks the token of a WebSocket connection as the HTTP API checks a request's",
            verifies_tokens=True,
        ),
    )
}


@dataclass(frozen=True)
class QueueSpec:
    name: str
    consumer: str
    batch_size: int
    max_receives: int = 5
    batching_window_seconds: int = 0

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"

    @property
    def visibility_timeout_seconds(self) -> int:
        # AWS advises at least six times the consumer's timeout plus the batching window
        # (a message waits in the poller for the window before its batch is invoked), so
        # a batch that is still running is never handed to a second consumer.
        return 6 * FUNCTIONS[self.consumer].timeout_seconds + self.batching_window_seconds


QUEUES: dict[str, QueueSpec] = {
    spec.name: spec
    for spec in (
        QueueSpec("uploads", consumer="upload_trigger", batch_size=10, batching_window_seconds=1),
        QueueSpec("generations", consumer="generate", batch_size=1),
        QueueSpec("maintenance", consumer="maintenance", batch_size=5),
        # Malware scan results (EventBridge → SQS): the upload trigger settles the file
        # with them, as it settles it with its own check.
        QueueSpec("scans", consumer="upload_trigger", batch_size=10),
    )
}

# How many times SQS hands a job to its consumer before the job moves to the DLQ;
# the generate function marks a reply failed on the last of them.
MAX_RECEIVES = QUEUES["generations"].max_receives

VACUUM_SCHEDULE_MINUTES = 60
