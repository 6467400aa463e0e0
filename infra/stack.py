"""The whole system in one stack, and the app that carries it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, CfnOutput, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.api import Api
from infra.compliance import acknowledge
from infra.config import DeploymentConfig, cdk_json_context
from infra.functions import Functions
from infra.monitoring import Monitoring
from infra.public_urls import PublicUrls
from infra.queues import WorkQueues
from infra.schedule import VacuumSchedule
from infra.storage import Storage

# The singleton function that the CDK adds to configure bucket notifications.
_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler"


class AgentFilesStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="agentfiles: chat threads that carry files and images",
            termination_protection=config.production,
            **kwargs,
        )
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.queues = WorkQueues(self, "Queues")
        self.storage.notify_object_created(self.queues["uploads"].queue)
        self.public_urls = (
            PublicUrls(self, "PublicUrls", bucket=self.storage.bucket, log_bucket=self.storage.access_logs)
            if config.public_urls
            else None
        )
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            storage=self.storage,
            queues=self.queues,
            public_base_url=self.public_urls.base_url if self.public_urls else None,
        )
        self.api = Api(self, "Api", config=config, handler=self.functions.entry_point("api"))
        self.schedule = VacuumSchedule(self, "Schedule", config=config, vacuum=self.functions["vacuum"])
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            queues=self.queues,
            schedule_dlq=self.schedule.dlq,
            functions=self.functions,
            api=self.api,
        )
        self._outputs()
        self._acknowledge_cdk_singletons()

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API")
        CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(
            self,
            "OpenAiSecretArn",
            value=self.functions.openai_secret.secret_arn,
            description="Put the model provider's API key here as the secret string",
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        if self.api.user_pool and self.api.user_pool_client:
            CfnOutput(self, "UserPoolId", value=self.api.user_pool.user_pool_id)
            CfnOutput(self, "UserPoolClientId", value=self.api.user_pool_client.user_pool_client_id)
        if self.public_urls:
            CfnOutput(self, "PublicBaseUrl", value=self.public_urls.base_url)

    def _acknowledge_cdk_singletons(self) -> None:
        for child in self.node.children:
            if child.node.id.startswith(_NOTIFICATIONS_HANDLER):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "The CDK's own bucket-notification handler runs once per deployment to configure "
                    "the bucket; its role and logging are the CDK's, not the application's.",
                )


def new_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """An app with `cdk.json`'s context (feature flags, defaults) under `context`."""
    return App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)


def add_checks(app: App) -> None:
    """Synthesis fails on any cdk-nag AwsSolutions finding that is not acknowledged."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    app = new_app(context, outdir)
    config = DeploymentConfig.from_context(app.node.try_get_context)
    AgentFilesStack(app, config.stack_name, config=config)
    add_checks(app)
    return app
