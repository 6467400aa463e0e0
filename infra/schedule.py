"""The vacuum's clock: an EventBridge rule that invokes it every few minutes."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.compliance import acknowledge
from infra.config import DeploymentConfig
from infra.queues import DLQ_RETENTION, encrypted_queue

# A run that EventBridge could not deliver is worth little once the next one is due.
TARGET_RETRY_ATTEMPTS = 2
TARGET_MAX_EVENT_AGE = Duration.hours(1)


class VacuumSchedule(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, vacuum: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        # Invocations EventBridge gave up on land here, so a broken vacuum is seen.
        self.dlq = encrypted_queue(self, "vacuum-schedule-dlq", retention_period=DLQ_RETENTION)
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the vacuum schedule's target; nothing consumes it.",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="Runs the vacuum: deletes unreferenced files past their grace, re-sends stuck work",
            schedule=events.Schedule.rate(Duration.minutes(config.vacuum_schedule_minutes)),
            targets=[
                targets.LambdaFunction(
                    vacuum,
                    dead_letter_queue=self.dlq,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                )
            ],
        )
