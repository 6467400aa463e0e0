"""What a first `cdk deploy` to a fresh account or region needs of the template: the API
Gateway logging role, a log level that keeps metrics, failed scheduled runs kept, queue
visibility that covers a whole batch, the key of a customer-encrypted secret, the
issuer's keys where the identity provider serves them, and scheduled runs that end before the next starts."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from agentfiles import topology
from infra.config import ConfigError, DeploymentConfig, cdk_json_context
from infra.stack import AgentFilesStack, new_app
from tests.infra.synthesis import PROD_CONTEXT, Synthesized, _values


@pytest.fixture(scope="module")
def warning_level(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A stack deployed with `-c logLevel=WARNING` (as `-c` passes it: a string)."""
    outdir = tmp_path_factory.mktemp("cdk.out.warning")
    app = new_app(
        {"aws:cdk:bundling-stacks": [], "stage": "quiet", "logLevel": "WARNING"}, outdir=str(outdir)
    )
    config = DeploymentConfig.from_context(app.node.try_get_context)
    stack = AgentFilesStack(app, config.stack_name, config=config)
    data = app.synth().get_stack_by_name(stack.stack_name).template
    return Synthesized(stack=stack, template=Template.from_json(data), data=data, path=outdir)


def _is_queue(synthesized: Synthesized, arn: Any) -> bool:
    target = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
    resource = synthesized.data["Resources"].get(target) if target else None
    return bool(resource) and resource["Type"] == "AWS::SQS::Queue"


def _function_id(synthesized: Synthesized, function_name: Any) -> str:
    """The function a rendered `FunctionName` or target `Arn` names (a Ref, an Arn, or its
    alias's ARN, which is built from the function's Ref)."""
    if "Fn::GetAtt" in function_name:
        return function_name["Fn::GetAtt"][0]
    resources = synthesized.data["Resources"]
    refs = {value["Ref"] for value in _values(function_name) if isinstance(value, dict) and "Ref" in value}
    (ref,) = {ref for ref in refs if ref in resources}
    if resources[ref]["Type"] == "AWS::Lambda::Alias":
        return _function_id(synthesized, resources[ref]["Properties"]["FunctionName"])
    assert resources[ref]["Type"] == "AWS::Lambda::Function", ref
    return ref


def _policy_statements(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# 1. API Gateway's CloudWatch Logs role


def test_given_a_fresh_account_when_synthesized_then_the_logging_role_is_set_before_the_websocket_stage(
    dev: Synthesized,
) -> None:
    # Given the default context (a fresh account: no API Gateway logging role) / When synthesized
    (account_id, account), *others = dev.of_type("AWS::ApiGateway::Account").items()
    assert not others

    # Then the account's CloudWatch Logs role is a role API Gateway assumes, with its push policy
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = dev.data["Resources"][role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}}
    ]
    (policy,) = role["Properties"]["ManagedPolicyArns"]
    assert policy["Fn::Join"][1][-1].endswith(
        ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    )
    # And the role outlives the stack, as the account setting does
    assert role["DeletionPolicy"] == "Retain"
    # And the WebSocket stage, which keeps access logs, is created only once the setting is made
    stage = dev.resource(dev.stack.push.stage)
    assert "AccessLogSettings" in stage["Properties"]
    assert account_id in stage["DependsOn"]


def test_given_apigateway_account_role_false_when_synthesized_then_the_account_setting_is_left_alone(
    prod: Synthesized,
) -> None:
    # Given -c apiGatewayAccountRole=false (the account manages its role) / When synthesized
    # Then the stack neither sets the account's role nor makes one
    assert PROD_CONTEXT["apiGatewayAccountRole"] == "false"
    assert prod.of_type("AWS::ApiGateway::Account") == {}
    assumed_by = [
        statement["Principal"].get("Service")
        for role in prod.of_type("AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    ]
    assert "apigateway.amazonaws.com" not in assumed_by


def test_given_cdk_json_when_read_then_cdks_own_rest_api_role_stays_off_and_no_rest_api_needs_it(
    any_stack: Synthesized,
) -> None:
    # Given CDK's flag, which governs the role `RestApi` would make for itself
    assert cdk_json_context()["@aws-cdk/aws-apigateway:disableCloudWatchRole"] is True
    # Then no construct relies on it: the stack has no REST API (the WebSocket stage logs
    # through the account setting above)
    assert any_stack.of_type("AWS::ApiGateway::RestApi") == {}


# 3. The WebSocket authorizer finds the issuer's keys


def test_given_jwks_url_context_when_synthesized_then_the_authorizer_reads_the_keys_there(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given -c jwksUrl=... with an external issuer / When synthesized
    environment = prod.resource(prod.stack.functions["websocket_authorizer"])["Properties"]["Environment"]
    # Then the authorizer has it as JWKS_URL, beside the issuer it belongs to
    assert environment["Variables"]["JWKS_URL"] == PROD_CONTEXT["jwksUrl"]
    assert environment["Variables"]["JWT_ISSUER"] == PROD_CONTEXT["jwtIssuer"]
    # And without it the authorizer discovers them (no JWKS_URL at all)
    default = dev.resource(dev.stack.functions["websocket_authorizer"])["Properties"]["Environment"]
    assert "JWKS_URL" not in default["Variables"]


def test_given_a_jwks_url_without_an_https_scheme_or_an_issuer_when_read_then_it_is_refused() -> None:
    for context in (
        {"jwtIssuer": "https://login.example.com", "jwtAudience": "web", "jwksUrl": "http://keys"},
        {"jwksUrl": "https://login.example.com/keys"},
    ):
        with pytest.raises(ConfigError, match="jwksUrl"):
            DeploymentConfig.from_context(context.get)


# 4. Metrics survive a higher log level


def test_given_log_level_warning_when_synthesized_then_lambda_filters_json_logs_at_its_own_warn(
    warning_level: Synthesized,
) -> None:
    # Given -c logLevel=WARNING (Python's spelling) / When synthesized
    for name in topology.FUNCTIONS:
        properties = warning_level.resource(warning_level.stack.functions[name])["Properties"]
        # Then Lambda filters JSON lines at WARN, its name for that level
        assert properties["LoggingConfig"]["LogFormat"] == "JSON"
        assert properties["LoggingConfig"]["ApplicationLogLevel"] == "WARN"
        # And Powertools filters at the same level (its own spelling is accepted there)
        assert properties["Environment"]["Variables"]["LOG_LEVEL"] == "WARNING"


# 5. A failed scheduled run is kept, and seen


def test_given_a_function_a_schedule_invokes_when_synthesized_then_a_failed_run_lands_in_an_alarmed_queue(
    any_stack: Synthesized,
) -> None:
    # Given every function an EventBridge rule invokes (asynchronously); the malware
    # scan-result rule targets a queue, whose consumer reports failures by record
    targets = {
        _function_id(any_stack, target["Arn"])
        for rule in any_stack.of_type("AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
        if not _is_queue(any_stack, target["Arn"])
    }
    assert any_stack.logical_id(any_stack.stack.functions["vacuum"]) in targets
    configs = {
        _function_id(any_stack, config["Properties"]["FunctionName"]): config["Properties"]
        for config in any_stack.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    alarmed = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in any_stack.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for dimension in alarm["Properties"]["Dimensions"]
        if dimension["Name"] == "QueueName"
    }
    for function_id in targets:
        # When its asynchronous invocation settings are read
        config = configs[function_id]
        # Then a run that fails after Lambda's retries goes to a queue, not away
        destination = config["DestinationConfig"]["OnFailure"]["Destination"]
        queue_id = destination["Fn::GetAtt"][0]
        assert any_stack.data["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"
        assert config["MaximumRetryAttempts"] == 1
        assert config["Qualifier"] == "$LATEST"
        # And any message there raises an alarm
        assert queue_id in alarmed
        # And the function's role may send there (Lambda sends as the function)
        role_id = any_stack.data["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        assert any(
            "sqs:SendMessage" in statement["Action"] and statement["Resource"] == destination
            for statement in _policy_statements(any_stack, role_id)
        )


# 6. Visibility timeouts cover a whole batch


def test_given_every_event_source_mapping_when_synthesized_then_visibility_covers_six_timeouts_and_the_window(
    any_stack: Synthesized,
) -> None:
    # Given every queue a function consumes / When the template is read
    mappings = any_stack.of_type("AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == len(topology.QUEUES)
    for mapping in mappings:
        properties = mapping["Properties"]
        queue = any_stack.data["Resources"][properties["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        function = any_stack.data["Resources"][_function_id(any_stack, properties["FunctionName"])]
        window = properties.get("MaximumBatchingWindowInSeconds", 0)
        # Then a message stays hidden while its batch waits for the window and runs to the timeout, six times
        assert queue["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"] + window, properties


# 8. A secret encrypted with a customer key, and the vacuum's schedule


def test_given_secret_kms_key_arn_when_synthesized_then_generate_may_decrypt_through_secrets_manager_only(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given -c secretKmsKeyArn=... beside -c openaiSecretArn=... / When synthesized
    key = PROD_CONTEXT["secretKmsKeyArn"]
    decrypting = {}
    for name, function in prod.stack.functions.by_name.items():
        for statement in _policy_statements(prod, prod.logical_id(function.role)):
            if "kms:Decrypt" in statement["Action"]:
                decrypting[name] = statement
    # Then only the function that reads the secret may decrypt, with that key only
    assert set(decrypting) == {"generate"}
    statement = decrypting["generate"]
    assert statement["Resource"] == key
    # And only as Secrets Manager's caller, in the stack's region
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {
                "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
            }
        }
    }
    # And a stack without a customer key grants no kms:Decrypt to any function
    for function in dev.stack.functions.by_name.values():
        assert not [
            s for s in _policy_statements(dev, dev.logical_id(function.role)) if "kms:Decrypt" in s["Action"]
        ]


def test_given_a_secret_kms_key_without_a_secret_or_an_arn_when_read_then_it_is_refused() -> None:
    for context in (
        {"secretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/abc"},
        {"openaiSecretArn": PROD_CONTEXT["openaiSecretArn"], "secretKmsKeyArn": "alias/mine"},
    ):
        with pytest.raises(ConfigError, match="secretKmsKeyArn"):
            DeploymentConfig.from_context(context.get)


@pytest.mark.parametrize("minutes", ["1", "4", "5"])
def test_given_a_vacuum_schedule_not_longer_than_the_vacuums_timeout_when_read_then_it_is_refused(
    minutes: str,
) -> None:
    # Given a schedule that would start a run while the last may still be going (timeout 300 s)
    assert topology.FUNCTIONS["vacuum"].timeout_seconds == 300
    # When the context is read / Then synthesis stops, naming the option
    with pytest.raises(ConfigError, match="vacuumScheduleMinutes"):
        DeploymentConfig.from_context({"vacuumScheduleMinutes": minutes}.get)


def test_given_a_vacuum_schedule_longer_than_its_timeout_when_read_then_it_is_kept() -> None:
    assert DeploymentConfig.from_context({"vacuumScheduleMinutes": "6"}.get).vacuum_schedule_minutes == 6
