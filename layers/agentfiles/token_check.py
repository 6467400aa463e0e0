"""Bearer tokens checked as the HTTP API's JWT authorizer checks them, for the WebSocket
API's `$connect` authorizer (API Gateway cannot put a JWT authorizer there).

The signature is verified with PyJWT against the issuer's JWKS, fetched by
`PyJWKClient` and cached for the life of the container; the rules are API Gateway's:
RS256, the configured issuer, `exp` / `nbf` / `iat`, a `sub`, and an `aud` (ID tokens)
or a `client_id` (Cognito access tokens) among the configured audiences.

Only the authorizer function imports this module (it needs PyJWT and cryptography).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jwt

from agentfiles.settings import get_settings

ALGORITHMS = ["RS256"]
# How long fetched keys are trusted before the JWKS is read again (a rotation shows up).
JWKS_LIFESPAN_S = 3600


class InvalidToken(Exception):
    """Why a token is refused."""


@cache
def _keys(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=5)


def jwks_url() -> str:
    settings = get_settings()
    if settings.jwks_url:
        return settings.jwks_url
    if not settings.jwt_issuer:
        raise InvalidToken("no issuer is configured (JWT_ISSUER)")
    return settings.jwt_issuer.rstrip("/") + "/.well-known/jwks.json"


def verify(token: str) -> dict[str, Any]:
    """The claims of a valid token; InvalidToken otherwise."""
    settings = get_settings()
    if not token:
        raise InvalidToken("the token is missing")
    if not settings.jwt_issuer or not settings.jwt_audience:
        raise InvalidToken("no issuer and audience are configured (JWT_ISSUER, JWT_AUDIENCE)")
    try:
        key = _keys(jwks_url()).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=settings.jwt_issuer,
            # API Gateway accepts `aud` or `client_id`; checked below, as it does.
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
    except jwt.PyJWKClientError as error:
        raise InvalidToken(f"the token's key is not in the issuer's JWKS: {error}") from error
    except jwt.PyJWTError as error:
        raise InvalidToken(f"the token is invalid: {error}") from error
    audiences = claims.get("aud", [])
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    if not ({*audiences, claims.get("client_id")} & set(settings.jwt_audience)):
        raise InvalidToken("the token does not have a valid audience")
    return claims


def reset() -> None:
    """Forget fetched keys (tests)."""
    _keys.cache_clear()
