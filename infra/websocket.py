"""The WebSocket API that pushes live replies: `$connect` behind a Lambda REQUEST
authorizer (the `token` query parameter, checked like the HTTP API's JWTs), and every
route to the `websocket` function. The API is made before the functions, which push to
its @connections endpoint; its routes are wired once they exist (`wire`)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from agentfiles import topology
from infra.compliance import acknowledge, skip_checkov
from infra.config import DeploymentConfig
from infra.logs import JsonAccessLogs, log_retention

STAGE = topology.WEBSOCKET_STAGE
TOKEN_SOURCE = "route.request.querystring.token"
# Routes selected by a frame's `action`, each answering on the connection.
ANSWERING_ROUTES = ("subscribe", "unsubscribe", "$default")

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.principalId",
}


class WebSocketPush(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.production else RemovalPolicy.DESTROY
        self.api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{config.stack_name}-push",
            description="agentfiles: live replies pushed to the threads a connection follows",
            route_selection_expression="$request.body.action",
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention(config.log_retention_days), removal_policy=removal
        )
        skip_checkov(
            self.access_logs,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; access logs hold request ids, routes, "
            "statuses and connection ids, no frames, so a customer key would add cost only.",
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STAGE,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                burst_limit=config.throttle_burst, rate_limit=config.throttle_rate
            ),
            access_log_settings=JsonAccessLogs(self.access_logs, ACCESS_LOG_FIELDS),
        )

    @property
    def url(self) -> str:
        """`wss://{api}.execute-api.{region}.amazonaws.com/live`: where clients connect."""
        return self.stage.url

    @property
    def callback_url(self) -> str:
        """`https://.../live`: the @connections endpoint the functions push through."""
        return self.stage.callback_url

    @property
    def connections_arn(self) -> str:
        """PostToConnection on this API's stage, for any connection (ids are API Gateway's)."""
        return Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{STAGE}/POST/@connections/*"
        )

    @property
    def close_connections_arn(self) -> str:
        """DeleteConnection on this API's stage, for any connection: an erased account's."""
        return Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{STAGE}/DELETE/@connections/*"
        )

    def wire(self, handler: lambda_.IFunction, authorizer: lambda_.IFunction) -> None:
        integration = integrations.WebSocketLambdaIntegration("Connections", handler)
        token = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer", authorizer, identity_source=[TOKEN_SOURCE]
        )
        self.api.add_route("$connect", integration=integration, authorizer=token)
        routes = [self.api.add_route("$disconnect", integration=integration)]
        routes += [
            self.api.add_route(key, integration=integration, return_response=True) for key in ANSWERING_ROUTES
        ]
        for route in routes:
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "A WebSocket API authorizes a connection once, at $connect (the token authorizer); "
                "its later routes run on that authorized connection and read its owner from it.",
            )
