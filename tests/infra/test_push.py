"""The WebSocket API that pushes live replies: routes, the $connect authorizer, the stage,
and what the functions are told about it."""

from __future__ import annotations

from typing import Any

from tests.infra.synthesis import Synthesized


def _of_push(synthesized: Synthesized, resource_type: str) -> dict[str, dict[str, Any]]:
    api_id = synthesized.logical_id(synthesized.stack.push.api)
    return {
        key: value
        for key, value in synthesized.of_type(resource_type).items()
        if value["Properties"].get("ApiId") == {"Ref": api_id}
    }


def _environment(synthesized: Synthesized, name: str) -> dict[str, Any]:
    function = synthesized.resource(synthesized.stack.functions[name])
    return function["Properties"]["Environment"]["Variables"]


def test_given_the_push_api_when_synthesized_then_it_routes_by_action_to_the_websocket_function(
    any_stack: Synthesized,
) -> None:
    # Given the push API / When synthesized
    (api,) = [
        a
        for a in any_stack.of_type("AWS::ApiGatewayV2::Api").values()
        if a["Properties"].get("ProtocolType") == "WEBSOCKET"
    ]
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in _of_push(any_stack, "AWS::ApiGatewayV2::Route").values()
    }
    integrations = _of_push(any_stack, "AWS::ApiGatewayV2::Integration")

    # Then frames are routed by their action, to the routes of the protocol
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"
    assert set(routes) == {"$connect", "$disconnect", "subscribe", "unsubscribe", "$default"}
    # And every route goes to the websocket function, and the answering ones answer on the connection
    websocket = any_stack.logical_id(any_stack.stack.functions["websocket"])
    for integration in integrations.values():
        assert websocket in str(integration["Properties"]["IntegrationUri"])
    assert {key for key, route in routes.items() if route.get("RouteResponseSelectionExpression")} == {
        "subscribe",
        "unsubscribe",
        "$default",
    }


def test_given_the_connect_route_when_synthesized_then_only_it_runs_the_token_authorizer(
    any_stack: Synthesized,
) -> None:
    # Given the push API's authorizer / When synthesized
    (authorizer_id, authorizer) = next(iter(_of_push(any_stack, "AWS::ApiGatewayV2::Authorizer").items()))
    routes = _of_push(any_stack, "AWS::ApiGatewayV2::Route").values()

    # Then it is a Lambda REQUEST authorizer on the token query parameter, run by the authorizer function
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == ["route.request.querystring.token"]
    function = any_stack.logical_id(any_stack.stack.functions["websocket_authorizer"])
    assert function in str(authorizer["Properties"]["AuthorizerUri"])
    # And only $connect uses it (API Gateway authorizes a connection once)
    authorized = {r["Properties"]["RouteKey"] for r in routes if r["Properties"].get("AuthorizerId")}
    assert authorized == {"$connect"}
    assert all(
        r["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}
        for r in routes
        if r["Properties"].get("AuthorizerId")
    )


def test_given_the_push_stage_when_synthesized_then_it_is_throttled_and_logged(
    any_stack: Synthesized,
) -> None:
    (stage,) = _of_push(any_stack, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "live"
    assert stage["Properties"]["AutoDeploy"] is True
    assert (
        stage["Properties"]["DefaultRouteSettings"]["ThrottlingBurstLimit"]
        == any_stack.stack.config.throttle_burst
    )
    destination = stage["Properties"]["AccessLogSettings"]["DestinationArn"]
    assert destination == {"Fn::GetAtt": [any_stack.logical_id(any_stack.stack.push.access_logs), "Arn"]}


def test_given_the_authorizer_when_synthesized_then_it_trusts_the_http_apis_issuer_and_audience(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given the Cognito pool (dev) and an external issuer (prod) / When synthesized
    dev_env, prod_env = _environment(dev, "websocket_authorizer"), _environment(prod, "websocket_authorizer")

    # Then the authorizer checks the same issuer and audience as the HTTP API's JWT authorizer
    pool = dev.logical_id(dev.stack.api.user_pool)
    assert pool in str(dev_env["JWT_ISSUER"]) and "cognito-idp." in str(dev_env["JWT_ISSUER"])
    assert dev_env["JWT_AUDIENCE"] == {"Ref": dev.logical_id(dev.stack.api.user_pool_client)}
    assert prod_env["JWT_ISSUER"] == "https://login.example.com/"
    assert prod_env["JWT_AUDIENCE"] == "agentfiles-web,agentfiles-cli"


def test_given_the_functions_that_push_when_synthesized_then_they_know_the_connections_endpoint(
    dev: Synthesized,
) -> None:
    for name in ("api", "generate", "maintenance", "upload_trigger", "vacuum"):
        url = _environment(dev, name)["WEBSOCKET_CALLBACK_URL"]
        assert dev.logical_id(dev.stack.push.api) in str(url) and "/live" in str(url)
    for name in ("websocket", "websocket_authorizer"):
        assert "WEBSOCKET_CALLBACK_URL" not in _environment(dev, name)
