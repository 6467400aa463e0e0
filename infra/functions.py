"""The Lambda functions, their layers, roles and queue consumers (what each is built
from: `infra/bundling.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from agentfiles import topology
from infra import permissions
from infra.bundling import ARCHITECTURE, RUNTIME, dependencies_layer, domain_layer, function_code
from infra.compliance import acknowledge, arn_wildcard_finding, arn_wildcard_finding_of_join, skip_checkov
from infra.config import DeploymentConfig
from infra.constants import (
    AUTH_REQUIREMENTS,
    COMMON_REQUIREMENTS,
    LIVE_ALIAS,
    MEDIA_REQUIREMENTS,
    METRICS_NAMESPACE,
    MODEL_REQUIREMENTS,
    SERVICE_PREFIX,
    SNAP_START_FUNCTIONS,
    handler_of,
    requirements_for,
)
from infra.logs import log_retention
from infra.queues import WorkQueues
from infra.storage import Storage

if TYPE_CHECKING:
    from infra.websocket import WebSocketPush

_APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


# What bounds each function's concurrency instead of reserved concurrency (which takes
# from the account's pool and fails to deploy on accounts with the default quota).
_CONCURRENCY_BOUNDS = {
    "api": "The API stage's throttling (throttleBurst, throttleRate) bounds its invocations.",
    "generate": "The SQS event source's maximum concurrency (context generateMaxConcurrency) bounds "
    "the model calls; reserved concurrency would throttle the poller and dead-letter jobs.",
    "upload_trigger": "Bounded by its queue's event source; it calls only S3 and DynamoDB, which cost "
    "per request whatever the concurrency.",
    "maintenance": "Bounded by its queue's event source; it calls only DynamoDB and SQS.",
    "vacuum": "Runs on a schedule, one invocation at a time at most every few minutes (the schedule "
    "is refused at synthesis if it is not longer than the vacuum's timeout).",
    "websocket": "The WebSocket stage's throttling bounds its route invocations; it calls only "
    "DynamoDB and the @connections API.",
    "websocket_authorizer": "Runs once per connection attempt, bounded by the WebSocket stage's "
    "throttling; it calls no AWS service but fetches the issuer's keys, cached.",
}


def acknowledge_function_checks(function: IConstruct, *, concurrency: str) -> None:
    """The checkov findings every function of this stack accepts, with the reason."""
    skip_checkov(function, "CKV_AWS_115", concurrency, resource_type="AWS::Lambda::Function")
    skip_checkov(
        function,
        "CKV_AWS_116",
        "Failures are kept where the invocation came from: each queue has a dead-letter queue, the "
        "API's caller gets the error, and the one function invoked asynchronously (the vacuum, by "
        "its schedule) has an on-failure destination queue with an alarm.",
        resource_type="AWS::Lambda::Function",
    )
    skip_checkov(
        function,
        "CKV_AWS_117",
        "The functions reach only AWS APIs (IAM-authenticated, over TLS) and the model provider; a "
        "VPC would add NAT gateways and endpoints to pay for with nothing private to reach.",
        resource_type="AWS::Lambda::Function",
    )
    skip_checkov(
        function,
        "CKV_AWS_173",
        "The environment holds resource names, ARNs and settings, no secret (the model API key is "
        "read from Secrets Manager); Lambda encrypts it at rest with its own key.",
        resource_type="AWS::Lambda::Function",
    )


def _allow(actions: list[str], *resources: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=actions, resources=list(resources))


class Functions(Construct):
    """One function per entry of `topology.FUNCTIONS`, each with its own role.

    With `snapStart`, the functions of `SNAP_START_FUNCTIONS` publish a version at each
    change (Lambda snapshots it then) behind an alias, `live`, which their integrations
    invoke: SnapStart applies to published versions only, never to $LATEST.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        storage: Storage,
        queues: WorkQueues,
        push: WebSocketPush,
        public_base_url: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.storage = storage
        self.queues = queues
        self.push = push
        self.public_base_url = public_base_url
        self.objects_arn = storage.bucket.arn_for_objects("*")
        removal = RemovalPolicy.RETAIN if config.production else RemovalPolicy.DESTROY
        self.openai_secret = self._openai_secret(removal)

        domain = domain_layer(self)
        dependency_layers = {
            name: dependencies_layer(self, name)
            for name in (COMMON_REQUIREMENTS, MODEL_REQUIREMENTS, AUTH_REQUIREMENTS, MEDIA_REQUIREMENTS)
        }
        self.by_name: dict[str, lambda_.Function] = {}
        self.aliases: dict[str, lambda_.Alias] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for spec in topology.FUNCTIONS.values():
            layers = [domain, dependency_layers[requirements_for(spec.name)]]
            self.by_name[spec.name] = self._function(spec, layers, removal)
            if self.snap_start(spec.name):
                self.aliases[spec.name] = lambda_.Alias(
                    self,
                    f"{spec.name}-{LIVE_ALIAS}",
                    alias_name=LIVE_ALIAS,
                    version=self.by_name[spec.name].current_version,
                )

        for work in queues.by_name.values():
            self.entry_point(work.spec.consumer).add_event_source(
                event_sources.SqsEventSource(
                    work.queue,
                    batch_size=work.spec.batch_size,
                    # Each generate invocation calls the model: this bounds the spending.
                    # (Reserved concurrency would also, but it takes from the account's pool,
                    # fails to deploy on accounts with the default quota, and makes Lambda
                    # throttle the poller, which sends messages to the DLQ unprocessed.)
                    max_concurrency=(
                        config.generate_max_concurrency if work.spec.consumer == "generate" else None
                    ),
                    max_batching_window=(
                        Duration.seconds(work.spec.batching_window_seconds)
                        if work.spec.batching_window_seconds
                        else None
                    ),
                    # Failed records return to the queue one by one; the rest of the
                    # batch is not redone.
                    report_batch_item_failures=True,
                )
            )

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.by_name[name]

    def role_of(self, name: str) -> iam.IRole:
        role = self.by_name[name].role
        assert role is not None
        return role

    def snap_start(self, name: str) -> bool:
        return self.config.snap_start and name in SNAP_START_FUNCTIONS

    def entry_point(self, name: str) -> lambda_.IFunction:
        """What an integration invokes: the `live` alias with SnapStart, else the function."""
        return self.aliases.get(name) or self.by_name[name]

    def _openai_secret(self, removal: RemovalPolicy) -> secretsmanager.ISecret:
        if self.config.openai_secret_arn:
            return secretsmanager.Secret.from_secret_complete_arn(
                self, "OpenAiApiKey", self.config.openai_secret_arn
            )
        secret = secretsmanager.Secret(
            self,
            "OpenAiApiKey",
            description="API key of the OpenAI-compatible endpoint: set the key itself as the secret string",
            removal_policy=removal,
        )
        skip_checkov(
            secret,
            "CKV_AWS_149",
            "Encrypted with the AWS-managed Secrets Manager key; only the generate function's role "
            "may read the secret, and a customer key would add cost and a key policy to keep.",
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "The value is an API key issued by the model provider; it is rotated there and then "
            "written here, so Secrets Manager has no rotation function to run.",
        )
        return secret

    def _environment(self, name: str) -> dict[str, str]:
        config = self.config
        environment = {
            "TABLE_NAME": self.storage.table.table_name,
            "BUCKET_NAME": self.storage.bucket.bucket_name,
            "GENERATIONS_QUEUE_URL": self.queues["generations"].queue.queue_url,
            "GENERATIONS_DLQ_URL": self.queues["generations"].dlq.queue_url,
            "MAINTENANCE_QUEUE_URL": self.queues["maintenance"].queue.queue_url,
            "POWERTOOLS_SERVICE_NAME": f"{SERVICE_PREFIX}-{name}",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": config.log_level,
            **topology.FUNCTION_ENVIRONMENT,
        }
        if name == "api" or topology.FUNCTIONS[name].needs_model:
            # The API names the model on each pending reply; the worker calls it.
            models = {"MODEL": config.model, "IMAGE_MODEL": config.image_model}
            environment.update({key: value for key, value in models.items() if value})
        if topology.FUNCTIONS[name].needs_model:
            environment["OPENAI_API_KEY_SECRET_ARN"] = self.openai_secret.secret_arn
            if config.openai_base_url:
                environment["OPENAI_BASE_URL"] = config.openai_base_url
            # The model fetches images by URL: presigned by default, or through the
            # CloudFront distribution when the stack has one.
            if self.public_base_url:
                environment["URL_MODE"] = "public"
                environment["PUBLIC_BASE_URL"] = self.public_base_url
            else:
                environment["URL_MODE"] = "presigned"
        if name == "vacuum":
            environment["GRACE_SECONDS"] = str(config.grace_seconds)
        if config.malware_scan and name in ("api", "generate", "upload_trigger"):
            # Those that store files (which then wait for their scan) and settle them.
            environment["MALWARE_SCAN"] = "true"
            if name == "upload_trigger":
                environment["MALWARE_UNSCANNABLE"] = config.malware_unscannable
        if name in ("api", "vacuum") and config.thread_retention_days:
            # The scheduled run applies it; the operator's commands read it from the API's.
            environment["THREAD_RETENTION_DAYS"] = str(config.thread_retention_days)
        if permissions.PUSH in permissions.PERMISSIONS[name]:
            environment["WEBSOCKET_CALLBACK_URL"] = self.push.callback_url
        environment.update(self._limits(name))
        return environment

    def _limits(self, name: str) -> dict[str, str]:
        """The limits context sets, for the functions that enforce them: the API checks
        models, quotas and the rate; generate stores pictures and sends attachments."""
        config = self.config
        limits: dict[str, str | int | tuple[str, ...] | None] = {}
        if name in ("api", "generate"):
            limits |= {
                "STORAGE_QUOTA_BYTES": config.storage_quota_bytes,
                "STORAGE_QUOTA_FILES": config.storage_quota_files,
            }
        if name == "api":
            limits |= {
                "MODELS": config.models,
                "IMAGE_MODELS": config.image_models,
                "GENERATIONS_PER_MINUTE": config.generations_per_minute,
            }
        if name == "generate":
            limits["ATTACHMENT_BUDGET_BYTES"] = config.attachment_budget_bytes
        if name in ("api", "generate", "upload_trigger"):
            # What each model reads: the API shows it (GET /models), generate shapes each
            # call by it, and the upload check makes one image copy per geometry of the
            # allowed chat models, so it learns their names too.
            limits["MODEL_CAPABILITIES"] = config.model_capabilities
        if name == "upload_trigger":
            limits |= {"MODEL": config.model, "MODELS": config.models}
        return {
            key: ",".join(value) if isinstance(value, tuple) else str(value)
            for key, value in limits.items()
            if value not in (None, ())
        }

    def _function(
        self, spec: topology.FunctionSpec, layers: list[lambda_.ILayerVersion], removal: RemovalPolicy
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.name}-logs",
            retention=log_retention(self.config.log_retention_days),
            removal_policy=removal,
        )
        self.log_groups[spec.name] = log_group
        role = iam.Role(
            self,
            f"{spec.name}-role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"agentfiles {spec.name} function",
        )
        # Instead of AWSLambdaBasicExecutionRole: write to this function's own log group only.
        role.add_to_policy(_allow(["logs:CreateLogStream", "logs:PutLogEvents"], log_group.log_group_arn))
        statements = self._permissions(spec.name)
        for statement in statements:
            role.add_to_policy(statement)
        if spec.needs_model and self.config.secret_kms_key_arn:
            role.add_to_policy(self._secret_key_decrypt(self.config.secret_kms_key_arn))
        if spec.traced:
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions.",
            )
        if permissions.PUSH in permissions.PERMISSIONS[spec.name]:
            acknowledge(
                role,
                arn_wildcard_finding_of_join(role, self.push.connections_arn),
                "Connection ids are made by API Gateway, one per client connection; the function pushes "
                "to whichever connections follow a thread, only by POST, only on this API's stage.",
            )
        if any(
            permissions.CLOSE_CONNECTIONS in grant.resources for grant in permissions.PERMISSIONS[spec.name]
        ):
            acknowledge(
                role,
                arn_wildcard_finding_of_join(role, self.push.close_connections_arn),
                "An erased account's connections are closed, whichever they are (ids are API Gateway's), "
                "only by DELETE, only on this API's stage.",
            )
        if any(self.objects_arn in statement.resources for statement in statements):
            acknowledge(
                role,
                arn_wildcard_finding(self.storage.bucket, "/*"),
                "Object keys are made by the server per owner and file ({owner}/{fileId}); the function "
                "acts for every owner, so it needs the bucket's objects, and nothing outside the bucket.",
            )
        if any(
            permissions.DERIVED_OBJECTS in grant.resources for grant in permissions.PERMISSIONS[spec.name]
        ):
            acknowledge(
                role,
                arn_wildcard_finding(self.storage.bucket, f"/{topology.DERIVED_PREFIX}*"),
                "What the upload check makes from a file is stored under derived/{owner}/{fileId}/, "
                "for every owner; the function writes nowhere else in the bucket.",
            )
        skip_checkov(
            log_group,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; the logs hold ids and outcomes, no "
            "message text or file bytes, so a customer key would add cost without a reader to stop.",
        )
        function = lambda_.Function(
            self,
            spec.name,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler_of(spec.name),
            code=function_code(spec.name),
            layers=layers,
            role=role,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            environment=self._environment(spec.name),
            logging_format=lambda_.LoggingFormat.JSON,
            # Lambda drops JSON lines below this level; the same level Powertools uses.
            application_log_level_v2=_APPLICATION_LOG_LEVELS[self.config.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if spec.traced else lambda_.Tracing.DISABLED,
            **self._snap_start_options(spec.name),
        )
        acknowledge_function_checks(function, concurrency=_CONCURRENCY_BOUNDS[spec.name])
        acknowledge(
            function,
            "AwsSolutions-L1",
            f"{RUNTIME.name} is the newest runtime this build compiles bytecode for (it needs an "
            "interpreter of the runtime's version): shipped .pyc files spare every cold start "
            "compiling from source, which outweighs a newer runtime (infra/bundling.py).",
        )
        return function

    def _snap_start_options(self, name: str) -> dict[str, Any]:
        if not self.snap_start(name):
            return {}
        return {
            "snap_start": lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
            # Each change publishes a version, and Lambda bills the cache of every
            # version's snapshot while the version exists: the one the alias leaves
            # behind is deleted.
            "current_version_options": lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
        }

    def _resource_arn(self, resource: str) -> str:
        """The ARN of a resource named in `infra.permissions`."""
        table = self.storage.table.table_arn
        if resource == permissions.TABLE:
            return table
        if resource.startswith("index:"):
            return f"{table}/index/{resource.removeprefix('index:')}"
        if resource == permissions.OBJECTS:
            return self.objects_arn
        if resource == permissions.DERIVED_OBJECTS:
            return self.storage.bucket.arn_for_objects(f"{topology.DERIVED_PREFIX}*")
        if resource == permissions.BUCKET:
            return self.storage.bucket.bucket_arn
        if resource == permissions.SECRET:
            return self.openai_secret.secret_arn
        if resource == permissions.CONNECTIONS:
            return self.push.connections_arn
        if resource == permissions.CLOSE_CONNECTIONS:
            return self.push.close_connections_arn
        kind, _, queue = resource.partition(":")
        if kind in ("queue", "dlq"):
            work = self.queues[queue]
            return (work.queue if kind == "queue" else work.dlq).queue_arn
        raise ValueError(f"unknown resource {resource!r} in infra.permissions")

    def trust_tokens_of(self, issuer: str, audiences: list[str]) -> None:
        """The WebSocket authorizer accepts the HTTP API's tokens: same issuer, same audience
        (and the issuer's keys where context `jwksUrl` says, else where discovery finds them)."""
        authorizer = self.by_name["websocket_authorizer"]
        authorizer.add_environment("JWT_ISSUER", issuer)
        authorizer.add_environment("JWT_AUDIENCE", ",".join(audiences))
        if self.config.jwks_url:
            authorizer.add_environment("JWKS_URL", self.config.jwks_url)

    @staticmethod
    def _secret_key_decrypt(key_arn: str) -> iam.PolicyStatement:
        """Reading a secret encrypted with a customer key needs kms:Decrypt on the key; only
        Secrets Manager may use it on the role's behalf, not a direct call."""
        return iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )

    def _permissions(self, name: str) -> list[iam.PolicyStatement]:
        """What the function does, beyond consuming its queue (the event source grants that)."""
        return [
            _allow(list(grant.actions), *(self._resource_arn(r) for r in grant.resources))
            for grant in permissions.PERMISSIONS[name]
        ]
