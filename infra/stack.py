"""The whole system in one stack, and the app that carries it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, CfnOutput, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.account import ApiGatewayAccount
from infra.api import Api
from infra.compliance import acknowledge, skip_checkov
from infra.config import DeploymentConfig, cdk_json_context
from infra.functions import Functions
from infra.malware import MalwareProtection
from infra.monitoring import Monitoring
from infra.public_urls import PublicUrls
from infra.queues import WorkQueues
from infra.schedule import VacuumSchedule
from infra.storage import Storage
from infra.websocket import WebSocketPush

# The singleton function that the CDK adds to configure bucket notifications.
_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler"
# The provider of `auto_delete_objects` (dev stacks empty their buckets when destroyed).
_AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"
_CDK_FUNCTION_CHECKS = {
    "CKV_AWS_115": "The CDK's own deployment-time function runs once per deployment, not per request.",
    "CKV_AWS_116": "The CDK's own deployment-time function is called by CloudFormation, which reports "
    "its failure on the stack.",
    "CKV_AWS_117": "The CDK's own deployment-time function reaches only S3's API; it has nothing to "
    "reach inside a VPC.",
}


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
        self.push = WebSocketPush(self, "Push", config=config)
        self.api_gateway_account = (
            ApiGatewayAccount(self, "ApiGatewayAccount") if config.api_gateway_account_role else None
        )
        if self.api_gateway_account:
            # The WebSocket stage keeps access logs: it can only once the account's role is set.
            self.api_gateway_account.before(self.push.stage)
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            storage=self.storage,
            queues=self.queues,
            push=self.push,
            public_base_url=self.public_urls.base_url if self.public_urls else None,
        )
        self.malware = (
            MalwareProtection(
                self,
                "MalwareProtection",
                bucket=self.storage.bucket,
                scans=self.queues["scans"],
                checker=self.functions.role_of("upload_trigger"),
                unscannable_allowed=config.malware_unscannable == "allow",
            )
            if config.malware_scan
            else None
        )
        self.api = Api(self, "Api", config=config, handler=self.functions.entry_point("api"))
        self.push.wire(self.functions["websocket"], self.functions["websocket_authorizer"])
        self.functions.trust_tokens_of(self.api.jwt_issuer, self.api.jwt_audience)
        self.schedule = VacuumSchedule(self, "Schedule", config=config, vacuum=self.functions["vacuum"])
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            queues=self.queues,
            schedule_dlq=self.schedule.dlq,
            failed_runs={
                "vacuum-failed-runs": self.schedule.failed_runs,
                **({"scan-results-dlq": self.malware.dlq} if self.malware else {}),
            },
            functions=self.functions,
            api=self.api,
        )
        self._outputs()
        self._acknowledge_cdk_singletons()

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API")
        CfnOutput(
            self,
            "WebSocketUrl",
            value=self.push.url,
            description="Live replies: connect with ?token=<the same JWT>, then subscribe to threads",
        )
        CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "TableName", value=self.storage.table.table_name)
        CfnOutput(
            self,
            "ApiFunctionName",
            value=self.functions["api"].function_name,
            description="Its environment holds the limits in force (read by agentfiles admin --stack)",
        )
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
            if child.node.id.startswith((_NOTIFICATIONS_HANDLER, _AUTO_DELETE_PROVIDER)):
                for check, reason in _CDK_FUNCTION_CHECKS.items():
                    skip_checkov(child, check, reason, resource_type="AWS::Lambda::Function")
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
