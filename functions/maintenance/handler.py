"""SQS → this function: background work the API hands off: the removal of a deleted
thread's messages (in pages, each releasing its references), and the erasure of an
account (in phases of pages, resumed where it stopped)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from agentfiles.data import jobs
from agentfiles.logic.erasure import run_erasure
from agentfiles.logic.exports import run_export
from agentfiles.logic.threads import purge_thread
from agentfiles.models.jobs import EraseAccountJob, ExportJob, MaintenanceJob, ThreadCleanupJob
from agentfiles.observability import logger, metrics
from agentfiles.settings import get_settings

# Fail at init, naming any variable the deployment did not set.
get_settings()

# Report every failed record, even when all of a batch failed, instead of failing the
# invocation: the records return to the queue either way, and Lambda error alarms then
# mean a crash, not one record that will be retried.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


_JOB = TypeAdapter(MaintenanceJob)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    job = _JOB.validate_json(record.body)
    if isinstance(job, EraseAccountJob):
        erase(job, lambda_context)
    elif isinstance(job, ExportJob):
        export(job, lambda_context)
    else:
        cleanup(job, lambda_context)


def cleanup(job: ThreadCleanupJob, lambda_context: LambdaContext) -> None:
    logger.append_keys(thread_id=job.thread_id)
    purge = purge_thread(job.owner, job.thread_id, lambda_context.get_remaining_time_in_millis)
    if purge.done:
        metrics.add_metric(name="ThreadsPurged", unit=MetricUnit.Count, value=1)
        logger.info("thread purged")
    else:
        # Out of time for this invocation, or a reply still ending: continue in a new job.
        jobs.send_thread_cleanup(job, purge.wait_s)
        logger.info("thread purge continues in a new job", extra={"wait_s": purge.wait_s})


def export(job: ExportJob, lambda_context: LambdaContext) -> None:
    logger.append_keys(owner=job.owner, export_id=job.export_id)
    if run_export(job.owner, job.export_id, lambda_context.get_remaining_time_in_millis).done:
        metrics.add_metric(name="ExportsMade", unit=MetricUnit.Count, value=1)
    else:
        # Out of time: the archive so far is saved, a new job appends the rest.
        jobs.send_export(job)
        logger.info("export continues in a new job")


def erase(job: EraseAccountJob, lambda_context: LambdaContext) -> None:
    logger.append_keys(owner=job.owner)
    step = run_erasure(job.owner, lambda_context.get_remaining_time_in_millis)
    if step.done:
        metrics.add_metric(name="AccountsErased", unit=MetricUnit.Count, value=1)
    else:
        # Out of time, or waiting for writes begun before the fence: continue in a new job.
        jobs.send_erasure(job, step.wait_s)
        logger.info("erasure continues in a new job", extra={"wait_s": step.wait_s})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
