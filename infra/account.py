"""What API Gateway needs from the account before a stage may log: its CloudWatch Logs role.

The role is an account setting, one per region (`AWS::ApiGateway::Account`), shared by
every REST and WebSocket API there. Until it is set, CloudFormation refuses a stage with
access logs ("CloudWatch Logs role ARN must be set in account settings to enable
logging") and rolls the whole stack back, so a first deploy to a fresh account or region
fails. This stack sets it, unless `-c apiGatewayAccountRole=false` says the account
manages it already (another stack, or a landing zone).

CDK's own role for REST APIs stays off (`@aws-cdk/aws-apigateway:disableCloudWatchRole`
in `cdk.json`): it belongs to `RestApi`, which this stack does not use, and the
WebSocket API's stage would not get it anyway.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from infra.compliance import acknowledge

PUSH_TO_CLOUDWATCH_LOGS = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


class ApiGatewayAccount(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway writes the account's API logs to CloudWatch Logs (account setting)",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_CLOUDWATCH_LOGS)],
        )
        # The setting outlives the stack (deleting AWS::ApiGateway::Account leaves it), and
        # other APIs of the account may log through it: the role stays with it.
        self.role.apply_removal_policy(RemovalPolicy.RETAIN)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{PUSH_TO_CLOUDWATCH_LOGS}]",
            "The AWS-managed policy API Gateway documents for its account-wide logging role: it "
            "may write to the log groups of any API of the account, which is what the setting is for.",
        )
        self.account = apigateway.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        self.account.node.add_dependency(self.role)

    def before(self, *constructs: IConstruct) -> None:
        """Stages that log are created once the account's role is set."""
        for construct in constructs:
            construct.node.add_dependency(self.account)
