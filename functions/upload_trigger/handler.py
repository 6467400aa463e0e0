"""S3 → SQS → this function: check each uploaded object and mark its file ready or
rejected. And EventBridge → SQS → this function: the malware scan's result for an
object, which settles its file too (ready once both passed). Failed records are
reported one by one (partial batch failures)."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfiles import initialization
from agentfiles.logic.files import announce_settled
from agentfiles.logic.inspection import inspect_upload
from agentfiles.logic.scanning import settle_scan
from agentfiles.models.notifications import S3EventNotification, ScanResultEvent
from agentfiles.observability import logger, metrics
from agentfiles.settings import get_settings
from agentfiles.topology import SCAN_EVENT_SOURCE, SCAN_RESULT_DETAIL_TYPE

# Fail at init, naming any variable the deployment did not set.
get_settings()

# Report every failed record, even when all of a batch failed, instead of failing the
# invocation: the records return to the queue either way, and Lambda error alarms then
# mean a crash, not one record that will be retried.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# The outcomes that end an upload's wait: its owner's open sockets are told.
SETTLED = frozenset({"ready", "rejected"})


def record_handler(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if isinstance(body, dict) and "detail-type" in body:
        scan_result_handler(body)
        return
    notification = S3EventNotification.model_validate(body)
    if notification.event == "s3:TestEvent":
        # S3 sends this once when the notification is configured; nothing to check.
        return
    for s3_record in notification.records:
        if not s3_record.event_name.startswith("ObjectCreated"):
            continue
        if s3_record.s3.bucket.name != get_settings().bucket_name:
            # Only our bucket's objects are checked; a key named by another bucket's event
            # must never act on ours. Retrying cannot change that: skipped.
            logger.warning(
                "notification for another bucket skipped", extra={"bucket": s3_record.s3.bucket.name}
            )
            metrics.add_metric(name="ForeignNotifications", unit=MetricUnit.Count, value=1)
            continue
        s3_object = s3_record.s3.object
        # S3 URL-encodes keys in notifications.
        key = unquote_plus(s3_object.key)
        result = inspect_upload(key, s3_object.e_tag)
        logger.info(
            "upload checked",
            extra={
                "file_id": result.file_id,
                "outcome": result.outcome,
                "reason": result.reason,
                "bytes_read": result.bytes_read,
                "checksum_source": result.checksum_source,
            },
        )
        metrics.add_metric(name=f"Uploads_{result.outcome}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="UploadBytesRead", unit=MetricUnit.Bytes, value=result.bytes_read)
        if result.outcome in SETTLED:
            announce_settled(key)


def scan_result_handler(body: dict) -> None:
    """One EventBridge event, as the `scans` queue holds it."""
    if body.get("source") != SCAN_EVENT_SOURCE or body.get("detail-type") != SCAN_RESULT_DETAIL_TYPE:
        # The rule delivers only scan results; anything else cannot become one by retrying.
        logger.warning("event of another kind skipped", extra={"detail_type": body.get("detail-type")})
        return
    event = ScanResultEvent.model_validate(body)
    bucket = event.detail.s3_object_details.bucket_name
    if bucket != get_settings().bucket_name:
        logger.warning("scan result for another bucket skipped", extra={"bucket": bucket})
        metrics.add_metric(name="ForeignNotifications", unit=MetricUnit.Count, value=1)
        return
    settled = settle_scan(event)
    logger.info(
        "scan result settled",
        extra={
            "file_id": settled.file_id,
            "outcome": settled.outcome,
            "scan_result": settled.result,
            "reason": settled.reason,
        },
    )
    metrics.add_metric(name=f"Scans_{settled.outcome}", unit=MetricUnit.Count, value=1)
    if settled.outcome in SETTLED:
        announce_settled(event.detail.s3_object_details.object_key)
    if settled.result == "THREATS_FOUND":
        metrics.add_metric(name="ScanThreatsFound", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


initialization.prepare()
