"""The HTTP API: routes, the JWT authorizer, the stage, CORS."""

from __future__ import annotations

import json
from typing import Any

from infra.constants import API_ROUTES
from tests.infra.synthesis import Synthesized

PUBLIC_ROUTES = {"GET /health", "GET /openapi.json", "GET /docs", "GET /asyncapi.json"}
# Public routes the OpenAPI document describes too (the documents and their viewer are not operations).
DOCUMENTED_PUBLIC = {("GET", "/health")}


def _routes(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        route["Properties"]["RouteKey"]: route["Properties"]
        for route in synthesized.of_http_api("AWS::ApiGatewayV2::Route").values()
    }


def test_given_the_route_list_when_synthesized_then_every_contract_route_exists_and_no_other(
    any_stack: Synthesized,
) -> None:
    # Given the one list of routes / When synthesized
    routes = _routes(any_stack)

    # Then the API has exactly those routes
    assert set(routes) == {route.key for route in API_ROUTES}
    # And the private ones are exactly the operations of the API's own OpenAPI document
    from functions.api.handler import openapi_schema

    document = json.loads(openapi_schema())
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert {(r.method, r.path) for r in API_ROUTES if not r.public} | DOCUMENTED_PUBLIC == operations
    assert {route.key for route in API_ROUTES if route.public} == PUBLIC_ROUTES


def test_given_private_routes_when_synthesized_then_each_needs_a_jwt_and_public_ones_do_not(
    any_stack: Synthesized,
) -> None:
    # Given the single JWT authorizer of the API
    (authorizer_id,) = any_stack.of_http_api("AWS::ApiGatewayV2::Authorizer")

    # When the routes are synthesized
    for key, route in _routes(any_stack).items():
        # Then public routes are open and every other route needs the JWT authorizer
        if key in PUBLIC_ROUTES:
            assert route["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in route, key
        else:
            assert route["AuthorizationType"] == "JWT", key
            assert route["AuthorizerId"] == {"Ref": authorizer_id}, key


def test_given_every_route_when_synthesized_then_all_go_to_the_api_function_through_one_integration(
    any_stack: Synthesized,
) -> None:
    # Given the one Lambda integration
    (integration_id, integration) = next(
        iter(any_stack.of_http_api("AWS::ApiGatewayV2::Integration").items())
    )
    assert len(any_stack.of_http_api("AWS::ApiGatewayV2::Integration")) == 1
    functions = any_stack.stack.functions
    api_function = any_stack.logical_id(functions.entry_point("api"))
    target = {"Ref": api_function} if functions.snap_start("api") else {"Fn::GetAtt": [api_function, "Arn"]}

    # When synthesized / Then it proxies to the API function (its live alias when it runs
    # from snapshots) with the 2.0 event format
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["IntegrationUri"] == target
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    # And every route targets it
    for key, route in _routes(any_stack).items():
        assert route["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]}, key


def test_given_defaults_when_synthesized_then_the_authorizer_trusts_the_stacks_cognito_client(
    dev: Synthesized,
) -> None:
    # Given no jwtIssuer in context / When synthesized
    (authorizer,) = dev.of_http_api("AWS::ApiGatewayV2::Authorizer").values()
    pool_id = dev.logical_id(dev.stack.api.user_pool)
    client_id = dev.logical_id(dev.stack.api.user_pool_client)

    # Then tokens must come from the stack's user pool, for its app client
    config = authorizer["Properties"]["JwtConfiguration"]
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    assert authorizer["Properties"]["IdentitySource"] == ["$request.header.Authorization"]
    assert config["Audience"] == [{"Ref": client_id}]
    issuer = config["Issuer"]["Fn::Join"][1]
    assert "https://cognito-idp." in issuer
    assert {"Ref": pool_id} in issuer


def test_given_defaults_when_synthesized_then_the_user_pool_is_invite_only_with_strong_passwords(
    dev: Synthesized,
) -> None:
    # Given the stack's user pool / When synthesized
    pool = dev.resource(dev.stack.api.user_pool)["Properties"]
    client = dev.resource(dev.stack.api.user_pool_client)["Properties"]

    # Then users are created by an administrator, passwords are long and mixed
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(
        policy[key] for key in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols")
    )
    # And the app client is public (no secret) and can sign in from a browser or a CLI
    assert client.get("GenerateSecret") in (None, False)
    assert set(client["ExplicitAuthFlows"]) >= {"ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH"}


def test_given_an_external_issuer_when_synthesized_then_it_is_trusted_and_no_user_pool_is_made(
    prod: Synthesized,
) -> None:
    # Given jwtIssuer and jwtAudience in context / When synthesized
    (authorizer,) = prod.of_http_api("AWS::ApiGatewayV2::Authorizer").values()

    # Then the authorizer checks that issuer and those audiences
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": "https://login.example.com/",
        "Audience": ["agentfiles-web", "agentfiles-cli"],
    }
    # And there is no Cognito
    assert not prod.of_type("AWS::Cognito::UserPool")
    assert prod.stack.api.user_pool is None


def test_given_throttle_context_when_synthesized_then_the_default_stage_is_throttled_and_logged(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, burst, rate in ((dev, 100, 50), (prod, 20, 10)):
        # Given the throttling context (defaults in dev) / When synthesized
        (stage,) = synthesized.of_http_api("AWS::ApiGatewayV2::Stage").values()
        props = stage["Properties"]

        # Then the $default stage deploys itself, with those limits
        assert props["StageName"] == "$default"
        assert props["AutoDeploy"] is True
        assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": burst, "ThrottlingRateLimit": rate}
        # And it writes JSON access logs, carrying the request id, to its log group
        log_group_id = synthesized.logical_id(synthesized.stack.api.access_logs)
        assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
        assert '"requestId": "$context.requestId"' in props["AccessLogSettings"]["Format"]


def test_given_cors_origins_when_synthesized_then_the_api_answers_preflights_for_them(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, origins in ((dev, ["*"]), (prod, ["https://app.example.com"])):
        # Given the origins / When synthesized
        (api,) = synthesized.of_http_api("AWS::ApiGatewayV2::Api").values()
        cors = api["Properties"]["CorsConfiguration"]

        # Then browsers on those origins may call it with a bearer token and an idempotency key
        assert cors["AllowOrigins"] == origins
        assert set(cors["AllowMethods"]) >= {"GET", "POST", "DELETE"}
        assert set(cors["AllowHeaders"]) >= {"authorization", "content-type", "idempotency-key"}
        assert cors["ExposeHeaders"] == ["retry-after"]


def test_given_the_api_openapi_when_compared_then_it_serves_exactly_the_private_routes() -> None:
    # Given the routes the API function documents in its OpenAPI schema (imported here, so
    # that a broken handler fails this test, not the collection of every infra test),
    # with every route module loaded, as the document is served
    from functions.api.handler import app

    schema = app.get_openapi_schema()
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.paths.items()
        for method in ("get", "post", "put", "patch", "delete")
        if getattr(item, method, None)
    }

    # When compared with the routes the stack deploys behind the authorizer
    deployed = {route.key for route in API_ROUTES if not route.public}

    # Then no route is deployed that the function does not serve, and none is served unreachable
    # (/health is documented too, as a public route)
    assert documented == deployed | {"GET /health"}
