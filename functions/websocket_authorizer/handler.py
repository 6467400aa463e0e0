"""The WebSocket API's `$connect` authorizer (a Lambda REQUEST authorizer): the `token`
query parameter must be a JWT that the HTTP API's JWT authorizer would accept, from the
same issuer and for the same audience. Its `sub` becomes the connection's owner, which
API Gateway hands to every later route of the connection."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponseWebSocket,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfiles.observability import logger
from agentfiles.settings import get_settings
from agentfiles.token_check import InvalidToken, verify

# Fail at init, naming any variable the deployment did not set.
get_settings()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    try:
        claims = verify(token)
    except InvalidToken as problem:
        logger.info("connection refused", extra={"reason": str(problem)})
        # API Gateway answers this exact error with 401 Unauthorized, at the upgrade.
        raise Exception("Unauthorized") from None
    sub = str(claims["sub"])
    response = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        event["methodArn"], principal_id=sub, context={"sub": sub}
    )
    response.allow_all_routes()
    return response.asdict()
