"""SnapStart (`snapStart=true`, off by default): the API and upload functions publish a
version at each change, behind a `live` alias that their integrations invoke; the
others, and every function by default, run $LATEST as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentfiles import topology
from infra.constants import LIVE_ALIAS, SNAP_START_FUNCTIONS
from tests.infra.synthesis import Synthesized


def _properties(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return synthesized.resource(synthesized.stack.functions[name])["Properties"]


def test_given_the_default_context_when_synthesized_then_no_function_publishes_versions(
    dev: Synthesized,
) -> None:
    # Given the defaults / When synthesized
    # Then no function has SnapStart, and there is no version or alias to pay for
    for name in topology.FUNCTIONS:
        assert "SnapStart" not in _properties(dev, name), name
    assert dev.of_type("AWS::Lambda::Version") == {}
    assert dev.of_type("AWS::Lambda::Alias") == {}


@pytest.mark.parametrize("name", sorted(topology.FUNCTIONS))
def test_given_snap_start_when_synthesized_then_only_the_waited_for_functions_use_it(
    prod: Synthesized, name: str
) -> None:
    # Given snapStart=true / When synthesized
    properties = _properties(prod, name)
    # Then the functions a user waits for snapshot their published versions, the others do not
    if name in SNAP_START_FUNCTIONS:
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        # SnapStart for Python needs 3.12 or later
        assert tuple(int(part) for part in properties["Runtime"].removeprefix("python").split(".")) >= (3, 12)
    else:
        assert "SnapStart" not in properties


@pytest.mark.parametrize("name", SNAP_START_FUNCTIONS)
def test_given_snap_start_when_synthesized_then_a_live_alias_points_at_a_version_deleted_once_replaced(
    prod: Synthesized, name: str
) -> None:
    # Given snapStart=true / When synthesized
    function_id = prod.logical_id(prod.stack.functions[name])
    alias = prod.resource(prod.stack.functions.aliases[name])
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    version = prod.data["Resources"][version_id]
    # Then the alias `live` points at a published version of the function
    assert alias["Properties"]["Name"] == LIVE_ALIAS
    assert alias["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["Properties"]["FunctionName"] == {"Ref": function_id}
    # And a version the alias no longer points at is deleted (its snapshot's cache is billed)
    assert version["DeletionPolicy"] == "Delete"


def test_given_snap_start_when_synthesized_then_the_http_api_and_the_upload_queue_invoke_the_alias(
    prod: Synthesized,
) -> None:
    # Given snapStart=true
    functions = prod.stack.functions
    api_alias = prod.logical_id(functions.aliases["api"])
    uploads = prod.logical_id(prod.stack.queues["uploads"].queue)

    # When synthesized
    (integration,) = prod.of_http_api("AWS::ApiGatewayV2::Integration").values()
    (mapping,) = [
        resource["Properties"]
        for resource in prod.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [uploads, "Arn"]}
    ]
    # Then both integrations invoke the alias, which API Gateway may invoke
    assert integration["Properties"]["IntegrationUri"] == {"Ref": api_alias}
    assert prod.invokes(mapping["FunctionName"], "upload_trigger")
    push_functions = [prod.logical_id(functions[name]) for name in ("websocket", "websocket_authorizer")]
    permissions = [
        resource["Properties"]
        for resource in prod.of_type("AWS::Lambda::Permission").values()
        if resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
        # (the WebSocket API invokes its own functions, which run on demand)
        and not any(name in json.dumps(resource["Properties"]["FunctionName"]) for name in push_functions)
    ]
    assert permissions
    assert all(prod.invokes(permission["FunctionName"], "api") for permission in permissions)
