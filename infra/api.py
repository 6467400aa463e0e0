"""The HTTP API: every route to the API function, behind a JWT authorizer."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.compliance import acknowledge, skip_checkov
from infra.config import DeploymentConfig
from infra.constants import API_ALLOWED_HEADERS, API_ROUTES
from infra.logs import JsonAccessLogs, log_retention

PASSWORD_MIN_LENGTH = 12
CORS_MAX_AGE = Duration.hours(1)

# One JSON line per request; the fields an operator needs to follow a request from
# the client to the function's own logs (the request id is the correlation id).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.claims.sub",
}


class Api(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, handler: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.production else RemovalPolicy.DESTROY
        self.user_pool: cognito.UserPool | None = None
        self.user_pool_client: cognito.UserPoolClient | None = None
        self.jwt_issuer: str = ""
        self.jwt_audience: list[str] = []
        authorizer = self._authorizer(config, removal)

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=config.stack_name,
            description="agentfiles: files, threads and messages",
            # The stage is made below, with throttling and access logs.
            create_default_stage=False,
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(config.cors_origins),
                allow_methods=[
                    apigwv2.CorsHttpMethod.GET,
                    apigwv2.CorsHttpMethod.POST,
                    apigwv2.CorsHttpMethod.DELETE,
                    apigwv2.CorsHttpMethod.OPTIONS,
                ],
                allow_headers=list(API_ALLOWED_HEADERS),
                # A page on another origin reads when it may try again after a 429.
                expose_headers=["retry-after"],
                max_age=CORS_MAX_AGE,
            ),
        )
        # One integration for every route: one warm pool, one place for routing and auth errors.
        integration = integrations.HttpLambdaIntegration("ApiFunction", handler)
        for route in API_ROUTES:
            (created,) = self.http_api.add_routes(
                path=route.path,
                methods=[apigwv2.HttpMethod[route.method]],
                integration=integration,
                authorizer=apigwv2.HttpNoneAuthorizer() if route.public else authorizer,
            )
            if route.public:
                acknowledge(
                    created,
                    "AwsSolutions-APIG4",
                    "Health, the OpenAPI document and its viewer are public by design; they read no data.",
                )

        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal,
        )
        skip_checkov(
            self.access_logs,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest; access logs hold request ids, routes, "
            "statuses and source addresses, no bodies, so a customer key would add cost only.",
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                burst_limit=config.throttle_burst, rate_limit=config.throttle_rate
            ),
            access_log_settings=JsonAccessLogs(self.access_logs, ACCESS_LOG_FIELDS),
        )

    @property
    def url(self) -> str:
        return self.stage.url

    def _authorizer(self, config: DeploymentConfig, removal: RemovalPolicy) -> apigwv2.IHttpRouteAuthorizer:
        if config.jwt_issuer:
            self.jwt_issuer, self.jwt_audience = config.jwt_issuer, list(config.jwt_audience)
            return authorizers.HttpJwtAuthorizer(
                "JwtAuthorizer", config.jwt_issuer, jwt_audience=list(config.jwt_audience)
            )
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=config.stack_name,
            # Users are invited by an administrator; open sign-up is a product decision.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            deletion_protection=config.production,
            removal_policy=removal,
        )
        acknowledge(
            pool,
            "AwsSolutions-COG2",
            "MFA is offered (TOTP) and left to each user; requiring it is a product decision "
            "that a deployment can make in the user pool.",
        )
        acknowledge(
            pool,
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) is a per-user cost left to the operator; "
            "passwords are long and MFA is available on the Essentials plan.",
        )
        client = pool.add_client(
            "Client",
            # A public client (browser or CLI): no secret to leak.
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True, user_password=True),
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        self.user_pool, self.user_pool_client = pool, client
        # What the authorizer checks, for the WebSocket API's authorizer to check the same.
        # (The issuer the HTTP API's user pool authorizer checks, spelled as it spells it.)
        issuer = f"https://cognito-idp.{Stack.of(self).region}.amazonaws.com/{pool.user_pool_id}"
        self.jwt_issuer, self.jwt_audience = issuer, [client.user_pool_client_id]
        return authorizers.HttpUserPoolAuthorizer("JwtAuthorizer", pool, user_pool_clients=[client])
