"""The vacuum's clock: an EventBridge rule that invokes it every few minutes.

EventBridge invokes a function asynchronously: its target's dead-letter queue holds only
the events it could not deliver (the function missing, or throttled past the event's
age). A run that Lambda accepted and that then failed is retried by Lambda itself and,
after its last retry, dropped, unless the function names an on-failure destination.
So there are two queues, and an alarm on each (`infra/monitoring.py`).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.compliance import acknowledge
from infra.config import DeploymentConfig
from infra.queues import DLQ_RETENTION, encrypted_queue

# A run that EventBridge could not deliver is worth little once the next one is due.
TARGET_RETRY_ATTEMPTS = 2
TARGET_MAX_EVENT_AGE = Duration.hours(1)
# A failed run is retried once by Lambda (a passing fault); the next scheduled run redoes
# the work in any case, so more retries would only overlap it.
FAILED_RUN_RETRY_ATTEMPTS = 1


def on_failure_queue(scope: Construct, construct_id: str, function: lambda_.Function) -> sqs.Queue:
    """A queue that receives each asynchronous invocation of `function` that failed for good
    (the event, the error and the attempts), as its on-failure destination."""
    queue = encrypted_queue(scope, construct_id, retention_period=DLQ_RETENTION)
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is the on-failure destination of a scheduled function; nothing consumes it.",
    )
    function.configure_async_invoke(
        on_failure=destinations.SqsDestination(queue),
        retry_attempts=FAILED_RUN_RETRY_ATTEMPTS,
        max_event_age=TARGET_MAX_EVENT_AGE,
    )
    return queue


class VacuumSchedule(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, vacuum: lambda_.Function
    ) -> None:
        super().__init__(scope, construct_id)
        # Invocations EventBridge could not deliver land here.
        self.dlq = encrypted_queue(self, "vacuum-schedule-dlq", retention_period=DLQ_RETENTION)
        acknowledge(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the vacuum schedule's target; nothing consumes it.",
        )
        # Runs that Lambda accepted and that failed after its retries land here.
        self.failed_runs = on_failure_queue(self, "vacuum-failed-runs", vacuum)
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
