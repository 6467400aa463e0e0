"""Bearer tokens checked as the HTTP API's JWT authorizer checks them, for the WebSocket
API's `$connect` authorizer (API Gateway cannot put a JWT authorizer there).

The signature is verified with PyJWT against the issuer's JWKS, fetched by
`PyJWKClient` and cached for the life of the container. The JWKS is where `JWKS_URL`
says, else the `jwks_uri` of the issuer's OpenID discovery document
(`{issuer}/.well-known/openid-configuration`), as the HTTP API's JWT authorizer finds
it: Okta, Keycloak, Entra ID, Google and Cognito all publish one, and most serve their
keys elsewhere than `{issuer}/.well-known/jwks.json`. The rules are API Gateway's:
RS256, the configured issuer, `exp` / `nbf` / `iat`, a `sub`, and an `aud` (ID tokens)
or a `client_id` (Cognito access tokens) among the configured audiences.

Only the authorizer function imports this module (it needs PyJWT and cryptography).
"""

from __future__ import annotations

import json
import urllib.request
from functools import cache
from typing import Any

import jwt

from agentfiles.settings import get_settings

ALGORITHMS = ["RS256"]
# How long fetched keys are trusted before the JWKS is read again (a rotation shows up).
JWKS_LIFESPAN_S = 3600
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT_S = 5
# A discovery document is a few kilobytes; anything past this is not one.
DISCOVERY_MAX_BYTES = 1 << 20


class InvalidToken(Exception):
    """Why a token is refused."""


@cache
def _keys(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=5)


@cache
def discovered_jwks_url(issuer: str) -> str:
    """The `jwks_uri` of the issuer's discovery document, read once per container (a
    failure is not cached: the next connection tries again)."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    try:
        with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_S) as response:
            document = json.loads(response.read(DISCOVERY_MAX_BYTES))
    except (OSError, ValueError) as error:
        raise InvalidToken(f"the issuer's discovery document could not be read from {url}: {error}") from None
    jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise InvalidToken(f"the issuer's discovery document at {url} names no jwks_uri")
    return jwks_uri


def jwks_url() -> str:
    settings = get_settings()
    if settings.jwks_url:
        return settings.jwks_url
    if not settings.jwt_issuer:
        raise InvalidToken("no issuer is configured (JWT_ISSUER)")
    return discovered_jwks_url(settings.jwt_issuer)


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
    """Forget fetched keys and discovered key locations (tests)."""
    _keys.cache_clear()
    discovered_jwks_url.cache_clear()
