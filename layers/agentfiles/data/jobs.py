"""SQS: the generation and maintenance queues."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from agentfiles.data import clients
from agentfiles.data.errors import Unavailable
from agentfiles.models.jobs import EraseAccountJob, ExportJob, GenerationJob, ThreadCleanupJob
from agentfiles.settings import get_settings


def _send(queue_url: str, body: str, delay_seconds: int = 0) -> None:
    try:
        clients.sqs().send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay_seconds)
    except (ClientError, BotoCoreError) as error:
        raise Unavailable("the job queue did not take the job") from error


def send_generation(job: GenerationJob) -> None:
    _send(get_settings().generations_queue_url, job.model_dump_json(by_alias=True, exclude_none=True))


def send_thread_cleanup(job: ThreadCleanupJob, delay_seconds: int = 0) -> None:
    _send(get_settings().maintenance_queue_url, job.model_dump_json(by_alias=True), delay_seconds)


def send_export(job: ExportJob) -> None:
    _send(get_settings().maintenance_queue_url, job.model_dump_json(by_alias=True))


def send_erasure(job: EraseAccountJob, delay_seconds: int = 0) -> None:
    # SQS delays a message by 15 minutes at most.
    _send(get_settings().maintenance_queue_url, job.model_dump_json(by_alias=True), min(delay_seconds, 900))


def delay_generation_retry(receipt_handle: str, seconds: int) -> None:
    """Back off before SQS hands the job out again (it comes back after `seconds`)."""
    try:
        clients.sqs().change_message_visibility(
            QueueUrl=get_settings().generations_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )
    except (ClientError, BotoCoreError):
        pass  # the queue's own visibility timeout applies instead


def send_to_generation_dlq(body: str, reason: str) -> None:
    """A body that can never be a job goes straight to the DLQ, with why."""
    clients.sqs().send_message(
        QueueUrl=get_settings().generations_dlq_url,
        MessageBody=body,
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
    )
