"""The WebSocket authorizer finds the issuer's keys as the HTTP API's JWT authorizer does:
through the issuer's OpenID discovery document (`jwks_uri`), read once, or where
`JWKS_URL` says. The issuer here is shaped as Okta's (`/oauth2/default`, keys at
`/v1/keys`), on a loopback port, and serves nothing at `/.well-known/jwks.json`."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentfiles import token_check
from agentfiles.settings import DEPLOYMENT_VARIABLES, get_settings
from agentfiles_local.runtime.tokens import TokenAuthority

AUDIENCE = "0oa1web"
DISCOVERY = "/oauth2/default/.well-known/openid-configuration"
KEYS = "/oauth2/default/v1/keys"


class OktaShapedIssuer:
    """An authorization server at `{origin}/oauth2/default`, as Okta lays one out."""

    def __init__(self) -> None:
        issuer = self
        self.requests: Counter[str] = Counter()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests[self.path] += 1
                if self.path == DISCOVERY:
                    body = {
                        "issuer": issuer.url,
                        "authorization_endpoint": f"{issuer.url}/v1/authorize",
                        "token_endpoint": f"{issuer.url}/v1/token",
                        "jwks_uri": f"{issuer.origin}{KEYS}",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == KEYS:
                    body = issuer.authority.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{self.origin}/oauth2/default"
        self.authority = TokenAuthority(self.url, audience=AUDIENCE)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def okta(monkeypatch: pytest.MonkeyPatch) -> Iterator[OktaShapedIssuer]:
    issuer = OktaShapedIssuer()
    for name in DEPLOYMENT_VARIABLES:
        monkeypatch.setenv(name, f"placeholder-{name.lower()}")
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    monkeypatch.delenv("JWKS_URL", raising=False)
    get_settings.cache_clear()
    token_check.reset()
    yield issuer
    issuer.stop()
    token_check.reset()
    get_settings.cache_clear()


def test_given_an_okta_shaped_issuer_when_tokens_are_checked_then_its_keys_are_found_by_discovery_once(
    okta: OktaShapedIssuer,
) -> None:
    # Given two tokens the issuer signed / When the authorizer checks both
    first = token_check.verify(okta.authority.issue("alice").token)
    second = token_check.verify(okta.authority.issue("bob").token)

    # Then both are accepted
    assert (first["sub"], second["sub"]) == ("alice", "bob")
    # And the discovery document and the keys were each read once, and nothing else was asked
    assert okta.requests == Counter({DISCOVERY: 1, KEYS: 1})


def test_given_an_explicit_jwks_url_when_a_token_is_checked_then_no_discovery_is_made(
    okta: OktaShapedIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given JWKS_URL (context jwksUrl) naming the keys
    monkeypatch.setenv("JWKS_URL", f"{okta.origin}{KEYS}")
    get_settings.cache_clear()

    # When a token is checked / Then it is accepted, and only the keys were read
    assert token_check.verify(okta.authority.issue("alice").token)["sub"] == "alice"
    assert okta.requests == Counter({KEYS: 1})


def test_given_an_issuer_without_a_discovery_document_when_a_token_is_checked_then_it_is_refused_and_retried(
    okta: OktaShapedIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an issuer whose discovery document is not where the issuer says
    monkeypatch.setenv("JWT_ISSUER", f"{okta.origin}/elsewhere")
    get_settings.cache_clear()
    token = TokenAuthority(f"{okta.origin}/elsewhere", audience=AUDIENCE).issue("alice").token

    # When tokens are checked / Then each is refused (not a 500), and the failure is not cached
    for _ in range(2):
        with pytest.raises(token_check.InvalidToken, match="discovery document"):
            token_check.verify(token)
    assert okta.requests["/elsewhere/.well-known/openid-configuration"] == 2
