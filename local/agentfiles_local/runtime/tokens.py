"""Signed JWTs for the local stack: the issuer `POST /dev/token` uses and the checks
the HTTP API's JWT authorizer makes (signature against the JWKS key, `exp`, `nbf`,
`iss`, `aud`), so that a request the local stack lets through would pass on AWS too.

The key pair lives in memory: the local stack's data lives in moto's memory as well,
so a token that outlived a restart would name an owner with nothing left.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"
AUDIENCE = "agentfiles-local"
DEFAULT_TTL_SECONDS = 12 * 3600
# Owners become key prefixes (`OWNER#{sub}`), so a subject is kept to a safe alphabet.
SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


class InvalidToken(Exception):
    """Why a request is not authorized, worded as API Gateway words it in `www-authenticate`."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int
    """Seconds since the epoch (the token's `exp`)."""


class TokenAuthority:
    """Issues tokens for any subject and verifies them as the JWT authorizer would."""

    def __init__(self, issuer: str, *, audience: str = AUDIENCE, ttl_seconds: int = DEFAULT_TTL_SECONDS):
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = self._private_key.public_key()
        self.key_id = uuid.uuid4().hex

    def issue(self, subject: str) -> IssuedToken:
        if not SUBJECT_PATTERN.fullmatch(subject):
            raise ValueError("sub must be 1 to 128 characters of A-Z a-z 0-9 _ . @ -")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "token_use": "access",
        }
        token = jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return IssuedToken(token=token, expires_at=claims["exp"])

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid token in an `Authorization` header value (with or
        without the `Bearer ` prefix, as API Gateway accepts both)."""
        token = (authorization or "").strip()
        scheme, _, rest = token.partition(" ")
        if scheme.lower() == "bearer":
            token = rest.strip()
        if not token:
            raise InvalidToken("the token is missing")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("the token is malformed") from error
        if header.get("kid") != self.key_id:
            raise InvalidToken("the token's key is not in the issuer's JWKS")
        try:
            return jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise InvalidToken("the token does not have a valid audience") from error
        except jwt.InvalidIssuerError as error:
            raise InvalidToken("the token does not have a valid issuer") from error
        except jwt.ImmatureSignatureError as error:
            raise InvalidToken("the token is not valid yet") from error
        except jwt.InvalidSignatureError as error:
            raise InvalidToken("the token signature is invalid") from error
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is invalid: {error}") from error

    def jwks(self) -> dict[str, Any]:
        """The public key set, served at `/.well-known/jwks.json` like any OIDC issuer's."""
        key = jwt.algorithms.RSAAlgorithm.to_jwk(self._public_key, as_dict=True)
        key.update({"kid": self.key_id, "alg": ALGORITHM, "use": "sig"})
        return {"keys": [key]}


class KeysServer:
    """A `TokenAuthority` on a loopback port of its own, its JWKS answered to any GET
    (an authorizer asks for `/.well-known/jwks.json`), for code that checks tokens
    without a whole local stack; `fetches` counts the key reads."""

    def __init__(self, *, audience: str = AUDIENCE) -> None:
        keys = self
        self.fetches = 0

        class Keys(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                keys.fetches += 1
                body = json.dumps(keys.authority.jwks()).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.authority = TokenAuthority(self.url, audience=audience)
        self._thread = threading.Thread(target=self._server.serve_forever, name="keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> KeysServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
