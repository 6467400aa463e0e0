"""Alarms for what needs a person: dead letters, function errors and throttles, API 5xx."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.api import Api
from infra.config import DeploymentConfig
from infra.constants import METRICS_NAMESPACE, SERVICE_PREFIX
from infra.functions import Functions
from infra.queues import WorkQueues

PERIOD = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        queues: WorkQueues,
        schedule_dlq: sqs.IQueue,
        failed_runs: dict[str, sqs.IQueue] | None = None,
        functions: Functions,
        api: Api,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "AlarmsKey",
            description="agentfiles: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if config.production else RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes alarm notifications as itself: the AWS-managed SNS key does
        # not let it, a customer key can.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self, "Alarms", display_name="agentfiles alarms", enforce_ssl=True, master_key=self.key
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        dead_letters = {f"{work.spec.name}-dlq": work.dlq for work in queues.by_name.values()}
        dead_letters["vacuum-schedule-dlq"] = schedule_dlq
        # Asynchronous runs (the schedule's) that failed after Lambda's retries.
        dead_letters.update(failed_runs or {})
        for name, dlq in dead_letters.items():
            # Any message here is work that failed for good and waits for a person.
            self._alarm(
                f"{name}-depth",
                dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                f"Messages are waiting in the {name} dead-letter queue",
            )
        for name, function in functions.by_name.items():
            self._alarm(
                f"{name}-errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                f"The {name} function failed",
            )
            self._alarm(
                f"{name}-throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"The {name} function was throttled",
            )
        # The vacuum never fails its invocation for one bad candidate or one stuck job; it
        # counts them. These say that something needs a look all the same.
        for metric_name, description in (
            ("CandidatesFailed", "The vacuum could not remove an unreferenced file"),
            ("SweepFailures", "The sweep could not re-send stuck work"),
            ("RepliesGivenUp", "A reply failed after its job was re-sent the most times"),
        ):
            self._alarm(
                f"vacuum-{metric_name}",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=metric_name,
                    dimensions_map={"service": f"{SERVICE_PREFIX}-vacuum"},
                    period=PERIOD,
                    statistic="Sum",
                ),
                description,
            )
        if config.malware_scan:
            # The file is already rejected and deleted; a person should still know an
            # upload carried malware.
            self._alarm(
                "upload_trigger-ScanThreatsFound",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name="ScanThreatsFound",
                    dimensions_map={"service": f"{SERVICE_PREFIX}-upload_trigger"},
                    period=PERIOD,
                    statistic="Sum",
                ),
                "The malware scan found a threat in an upload (the file was rejected and deleted)",
            )
        self._alarm(
            "api-5xx",
            api.http_api.metric_server_error(period=PERIOD, statistic="Sum"),
            "The HTTP API answered with a server error",
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            # No data means nothing happened: no messages, no invocations.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
