"""SQS: the generation and maintenance queues."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from agentfiles.data import clients
from agentfiles.errors import ServiceUnavailable
from agentfiles.models.jobs import GenerationJob, ThreadCleanupJob
from agentfiles.settings import get_settings


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"


def _send(queue_url: str, body: str, delay_seconds: int = 0) -> None:
    try:
        clients.sqs().send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay_seconds)
    except (ClientError, BotoCoreError) as error:
        raise QueueUnavailable("the job queue is unavailable; retry the request") from error


def send_generation(job: GenerationJob) -> None:
    _send(get_settings().generations_queue_url, job.model_dump_json(by_alias=True, exclude_none=True))


def send_thread_cleanup(job: ThreadCleanupJob, delay_seconds: int = 0) -> None:
    _send(get_settings().maintenance_queue_url, job.model_dump_json(by_alias=True), delay_seconds)
