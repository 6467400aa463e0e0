"""Least privilege: each function's role allows exactly what that function does."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from agentfiles import topology
from infra import permissions
from tests.infra.synthesis import Synthesized

CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
# Granted by active tracing; X-Ray has no resource-level permissions for these two.
TRACING = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGGING = {"logs:CreateLogStream", "logs:PutLogEvents"}


def _resource_name(resource: Any) -> str:
    """A readable name for a policy resource: `Table.Arn`, `Files.Arn/*`, `*`, or a literal ARN."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        return f"{logical_id}.{attribute}"
    if "Ref" in resource:
        return resource["Ref"]
    if "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        return separator.join(_resource_name(part) for part in parts)
    raise AssertionError(f"unexpected resource form {resource!r}")


def _grants(synthesized: Synthesized, name: str) -> dict[str, set[str]]:
    """Every (action → resources) the function's role allows, across all its policies."""
    role = synthesized.stack.functions[name].role
    role_id = synthesized.logical_id(role)
    grants: dict[str, set[str]] = defaultdict(set)
    policies = [
        policy["Properties"]
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    assert policies, f"{name} has no policy"
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants[action] |= {_resource_name(resource) for resource in resources}
    return dict(grants)


def _resource(synthesized: Synthesized, resource: str) -> str:
    """A resource of `infra.permissions`, as `_resource_name` reads the template."""
    stack = synthesized.stack
    table = f"{synthesized.logical_id(stack.storage.table)}.Arn"
    if resource == permissions.TABLE:
        return table
    if resource.startswith("index:"):
        return f"{table}/index/{resource.removeprefix('index:')}"
    if resource == permissions.OBJECTS:
        return f"{synthesized.logical_id(stack.storage.bucket)}.Arn/*"
    if resource == permissions.DERIVED_OBJECTS:
        return f"{synthesized.logical_id(stack.storage.bucket)}.Arn/derived/*"
    if resource == permissions.BUCKET:
        return f"{synthesized.logical_id(stack.storage.bucket)}.Arn"
    if resource == permissions.SECRET:
        # A created secret's Ref is its ARN; a given one is its literal ARN.
        return stack.config.openai_secret_arn or synthesized.logical_id(stack.functions.openai_secret)
    if resource == permissions.CONNECTIONS:
        return _connections(synthesized)
    if resource == permissions.CLOSE_CONNECTIONS:
        return _connections(synthesized).replace("/POST/", "/DELETE/")
    kind, _, name = resource.partition(":")
    work = stack.queues[name]
    return f"{synthesized.logical_id(work.queue if kind == 'queue' else work.dlq)}.Arn"


def _connections(synthesized: Synthesized) -> str:
    api = synthesized.logical_id(synthesized.stack.push.api)
    return f"arn:AWS::Partition:execute-api:AWS::Region:AWS::AccountId:{api}/live/POST/@connections/*"


def _expected(synthesized: Synthesized, name: str) -> dict[str, set[str]]:
    """The permission table, resolved to this template's logical ids, plus what every
    function gets: its log group, its queue as a consumer, X-Ray where it is traced."""
    stack = synthesized.stack
    log_group = f"{synthesized.logical_id(stack.functions.log_groups[name])}.Arn"
    grants: dict[str, set[str]] = defaultdict(set)
    for action in LOGGING:
        grants[action].add(log_group)
    if topology.FUNCTIONS[name].traced:
        for action in TRACING:
            grants[action].add("*")
    for spec in topology.QUEUES.values():
        if spec.consumer == name:
            for action in CONSUME:
                grants[action].add(_resource(synthesized, permissions.queue(spec.name)))
    for grant in permissions.PERMISSIONS[name]:
        for action in grant.actions:
            grants[action] |= {_resource(synthesized, resource) for resource in grant.resources}
    if name == "vacuum":
        # Its on-failure destination: Lambda sends a failed asynchronous run there as the function.
        failed_runs = f"{synthesized.logical_id(stack.schedule.failed_runs)}.Arn"
        for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"):
            grants[action].add(failed_runs)
    if topology.FUNCTIONS[name].needs_model and stack.config.secret_kms_key_arn:
        grants["kms:Decrypt"].add(stack.config.secret_kms_key_arn)
    return dict(grants)


@pytest.mark.parametrize("name", list(topology.FUNCTIONS))
def test_given_a_function_when_its_role_is_synthesized_then_it_allows_exactly_its_listed_actions(
    any_stack: Synthesized, name: str
) -> None:
    # Given the permission table of the design / When the role's policies are read
    grants = _grants(any_stack, name)

    # Then actions and resources are exactly the expected ones, nothing more, nothing less
    assert grants == _expected(any_stack, name)


@pytest.mark.parametrize("name", list(topology.FUNCTIONS))
def test_given_a_function_role_when_synthesized_then_no_action_is_a_wildcard_and_only_xray_is_unscoped(
    any_stack: Synthesized, name: str
) -> None:
    # Given the function's grants / When read
    grants = _grants(any_stack, name)

    # Then no action has a wildcard, and only X-Ray (which cannot be scoped) has resource "*"
    assert not [action for action in grants if "*" in action]
    unscoped = {action for action, resources in grants.items() if "*" in resources}
    assert unscoped == (TRACING if topology.FUNCTIONS[name].traced else set())
    # And the only resource wildcards are the bucket's objects (keys are per owner and file),
    # those made from them (under derived/), and the connections of the WebSocket API's
    # stage (ids are API Gateway's), POST only, and DELETE only for the function that
    # closes an erased account's
    objects = f"{any_stack.logical_id(any_stack.stack.storage.bucket)}.Arn/*"
    derived = f"{any_stack.logical_id(any_stack.stack.storage.bucket)}.Arn/derived/*"
    closing = {_connections(any_stack).replace("/POST/", "/DELETE/")} if name == "maintenance" else set()
    for action, resources in grants.items():
        for resource in resources - {"*", objects, derived, _connections(any_stack), *closing}:
            assert "*" not in resource, (action, resource)


def test_given_the_functions_when_synthesized_then_each_has_its_own_role_without_managed_policies(
    any_stack: Synthesized,
) -> None:
    # Given every function / When synthesized
    roles = {
        name: any_stack.resource(function)["Properties"]["Role"]["Fn::GetAtt"][0]
        for name, function in any_stack.stack.functions.by_name.items()
    }

    # Then no two share a role
    assert len(set(roles.values())) == len(roles)
    for role_id in roles.values():
        role = any_stack.data["Resources"][role_id]["Properties"]
        # And each role is only for Lambda, with no AWS-managed policy attached
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]
        assert "ManagedPolicyArns" not in role
        assert "Policies" not in role


def test_given_the_websocket_api_when_synthesized_then_only_the_functions_that_push_may_post_to_it(
    any_stack: Synthesized,
) -> None:
    # Given every function / When their grants are read
    post, delete = _connections(any_stack), _connections(any_stack).replace("/POST/", "/DELETE/")
    managing = {
        name: _grants(any_stack, name).get("execute-api:ManageConnections") for name in topology.FUNCTIONS
    }
    pushers = {name for name, arns in managing.items() if arns and post in arns}
    closers = {name for name, arns in managing.items() if arns and delete in arns}

    # Then exactly the functions that make messages push, scoped to POST on the API's stage,
    # and only the one that erases accounts may also close connections (DELETE), nothing else
    assert (
        pushers
        == {name for name, arns in managing.items() if arns}
        == {"api", "generate", "maintenance", "upload_trigger", "vacuum"}
    )
    assert closers == {"maintenance"}
    assert all(arns <= {post, delete} for arns in managing.values() if arns)


def test_given_the_openai_secret_when_synthesized_then_only_generate_may_read_it(
    any_stack: Synthesized,
) -> None:
    # Given every function / When their grants are read
    readers = {
        name
        for name in topology.FUNCTIONS
        if any(action.startswith("secretsmanager:") for action in _grants(any_stack, name))
    }

    # Then only the function that calls the model can read the key
    assert readers == {name for name, spec in topology.FUNCTIONS.items() if spec.needs_model} == {"generate"}
