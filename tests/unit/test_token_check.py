"""The WebSocket authorizer's token check: what API Gateway's JWT authorizer accepts,
verified with PyJWT against the issuer's JWKS, fetched once and cached."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest

from agentfiles import token_check
from agentfiles.settings import get_settings
from agentfiles_local.runtime.tokens import ALGORITHM, KeysServer, TokenAuthority


class Issuer(KeysServer):
    """An OIDC issuer on a loopback port: its JWKS at /.well-known/jwks.json."""

    def __init__(self) -> None:
        super().__init__(audience="web-client")

    def sign(self, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": "alice", "aud": "web-client", "iat": now, "exp": now + 60, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        private = self.authority._private_key
        return jwt.encode(body, private, algorithm=ALGORITHM, headers={"kid": self.authority.key_id})


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Issuer]:
    found = Issuer()
    monkeypatch.setenv("JWT_ISSUER", found.url)
    monkeypatch.setenv("JWT_AUDIENCE", "web-client,cli-client")
    # This issuer answers its JWKS to any GET: its keys are named, not discovered.
    monkeypatch.setenv("JWKS_URL", f"{found.url}/.well-known/jwks.json")
    get_settings.cache_clear()
    token_check.reset()
    yield found
    found.stop()
    token_check.reset()
    get_settings.cache_clear()


def test_a_token_of_the_issuer_for_the_audience_is_accepted_and_the_keys_are_fetched_once(issuer):
    # Given two valid tokens / When both are checked
    first = token_check.verify(issuer.sign())
    second = token_check.verify(issuer.sign(sub="bob"))
    # Then their claims come back, and the JWKS was read once
    assert (first["sub"], second["sub"]) == ("alice", "bob")
    assert issuer.fetches == 1


def test_a_cognito_access_token_is_accepted_by_its_client_id(issuer):
    # Given an access token: no aud, the app client's id in client_id (as Cognito makes them)
    token = issuer.sign(aud=None, client_id="cli-client", token_use="access")
    # Then it is accepted, as the HTTP API's JWT authorizer accepts it
    assert token_check.verify(token)["sub"] == "alice"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://other.example.com"}, "issuer"),
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"sub": None}, "sub"),
    ],
)
def test_a_token_for_another_audience_issuer_or_time_or_without_a_subject_is_refused(issuer, claims, why):
    with pytest.raises(token_check.InvalidToken):
        token_check.verify(issuer.sign(**claims))


def test_a_token_signed_by_another_key_or_no_token_at_all_is_refused(issuer):
    stranger = TokenAuthority(issuer.url, audience="web-client")
    with pytest.raises(token_check.InvalidToken):
        token_check.verify(stranger.issue("alice").token)
    with pytest.raises(token_check.InvalidToken):
        token_check.verify("")
