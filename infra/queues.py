"""The work queues of `agentfiles.topology.QUEUES`, each with its dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentfiles import topology
from infra.compliance import skip_checkov

DLQ_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class WorkQueue:
    spec: topology.QueueSpec
    queue: sqs.Queue
    dlq: sqs.Queue


def encrypted_queue(scope: Construct, construct_id: str, **props: object) -> sqs.Queue:
    """A queue with SQS-managed encryption that refuses plain HTTP."""
    queue = sqs.Queue(
        scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **props
    )
    skip_checkov(
        queue,
        "CKV_AWS_27",
        "Encrypted at rest with SQS-managed keys (SSE-SQS), which the rule does not recognise; a KMS "
        "key would need a key policy for S3's notifications and cost a KMS call per message.",
    )
    return queue


class WorkQueues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, WorkQueue] = {}
        for spec in topology.QUEUES.values():
            # Kept as long as SQS allows, so a failure can be read and redriven at leisure.
            dlq = encrypted_queue(self, f"{spec.name}-dlq", retention_period=DLQ_RETENTION)
            queue = encrypted_queue(
                self,
                spec.name,
                visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receives),
            )
            self.by_name[spec.name] = WorkQueue(spec=spec, queue=queue, dlq=dlq)

    def __getitem__(self, name: str) -> WorkQueue:
        return self.by_name[name]
