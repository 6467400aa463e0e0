"""SQS → this function: one generation job per record. Failed records are reported
one by one; a retryable model error sets the record's backoff before failing it.

The one traced function: a reply's time goes to the model and to a handful of table
calls, and an X-Ray trace shows which (botocore calls are recorded as subsegments;
what remains of the handler's segment is the model). Its cold start already carries
the model SDK, so the tracer's import is lost in it."""

from __future__ import annotations

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from agentfiles.data import jobs
from agentfiles.logic.generation import RetryLater, run_job
from agentfiles.models.jobs import GenerationJob
from agentfiles.observability import SERVICE, logger, metrics
from agentfiles.settings import get_settings
from agentfiles.topology import MAX_RECEIVES

# Fail at init, naming any variable the deployment did not set.
get_settings()
tracer = Tracer(service=SERVICE)

# Report every failed record, even when all of a batch failed, instead of failing the
# invocation: the records return to the queue either way, and Lambda error alarms then
# mean a crash, not a model that asked us to slow down.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    try:
        job = GenerationJob.model_validate_json(record.body)
    except ValidationError as error:
        # Retrying cannot make this a job: park it in the DLQ now, with the reason.
        jobs.send_to_generation_dlq(record.body, f"not a generation job: {error.errors()[:3]}")
        logger.error("invalid job sent to the DLQ", extra={"message_id": record.message_id})
        metrics.add_metric(name="InvalidJobs", unit=MetricUnit.Count, value=1)
        return
    logger.set_correlation_id(job.message_id)
    tracer.put_annotation(key="replyId", value=job.reply_id)
    receive_count = int(record.attributes.approximate_receive_count)
    try:
        outcome = run_job(job, receive_count, MAX_RECEIVES)
    except RetryLater as retry:
        metrics.add_metric(name="GenerationRetries", unit=MetricUnit.Count, value=1)
        logger.warning("generation will be retried", extra={"reason": str(retry), "delay_s": retry.delay_s})
        jobs.delay_generation_retry(record.receipt_handle, retry.delay_s)
        raise
    metrics.add_metric(name=f"Replies_{outcome.status}", unit=MetricUnit.Count, value=1)
    logger.info(
        "generation done",
        extra={
            "status": outcome.status,
            "writes": outcome.writes,
            "chunks": outcome.chunks,
            "error": outcome.error_code,
        },
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
