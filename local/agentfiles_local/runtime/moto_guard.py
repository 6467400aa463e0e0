"""What AWS checks before a request reaches S3 (or any service), in front of moto's
server, which checks none of it.

moto takes any signature, or none: a presigned URL would work after it expired, with
its signature changed, or with another `Content-Type` than the one it was signed for,
and any web page could `fetch` every owner's rows with junk credentials. AWS refuses
all of that, so the local stack does too, and a local test sees what AWS would answer:

- A presigned (query-signed, SigV4) request is verified as S3 verifies it: the
  stack's access key, the signature over the method, path, query and every signed
  header (`Content-Type`, `Content-Length`, `If-None-Match`, `x-amz-checksum-sha256`:
  change one and the signature no longer matches), `X-Amz-Expires` from `X-Amz-Date`,
  and no `x-amz-*` header sent that was not signed. A refusal is S3's 403 XML error.
  A body whose SHA-256 is not its `x-amz-checksum-sha256` is S3's 400 `BadDigest`.
- A header-signed request (boto3's) must carry the stack's access key (the stack's
  own processes have it). An unsigned one is refused, except reads of the bucket's
  objects when the stack stands in for a public origin (`URL_MODE=public`), and a CORS
  preflight from the stack's own page.
- Browsers: only the stack's own page (its origins, given once the gateway is bound)
  may call moto, and a `Host` that is not moto's loopback address (a DNS name rebound to
  127.0.0.1) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
# S3 refuses a presigned URL valid for longer than seven days.
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
# How far a request's X-Amz-Date may be ahead of this clock (S3 allows 15 minutes of skew).
MAX_SKEW_SECONDS = 15 * 60
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class MotoGuard:
    """WSGI middleware around moto's application."""

    app: Wsgi
    access_key_id: str
    secret_access_key: str
    # Unsigned GET/HEAD of objects allowed (the bucket stands in for a public origin).
    public_reads: bool = False
    # The stack's page (the gateway's origins); browsers from anywhere else are refused.
    origins: set[str] = field(default_factory=set)
    # moto's own `host:port` names; set once it is bound. Empty: any Host.
    hosts: set[str] = field(default_factory=set)
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allow_origins(self, origins: Iterable[str]) -> None:
        with self._lock:
            self.origins = {origin.lower().rstrip("/") for origin in origins}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        try:
            self.check(environ)
            self._check_checksum(environ)
        except Refused as refusal:
            return self._refuse(refusal, origin, start_response)
        return self.app(environ, start_response)

    # ---- the checks

    def check(self, environ: dict[str, Any]) -> None:
        self._check_browser(environ)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return  # a preflight from the stack's own page (others were refused above)
        query = _query_pairs(environ.get("QUERY_STRING", ""))
        names = {name.lower() for name, _ in query}
        if "x-amz-signature" in names or "x-amz-credential" in names:
            self._check_query_signature(environ, method, query)
            return
        if "signature" in names and "awsaccesskeyid" in names:
            raise Refused(
                403, "AccessDenied", "Signature Version 2 is not accepted here: presign with SigV4 (s3v4)."
            )
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization:
            self._check_header_credential(authorization)
            return
        path = environ.get("PATH_INFO", "/")
        if self.public_reads and method in ("GET", "HEAD") and path.strip("/").count("/") >= 1:
            return
        raise Refused(403, "AccessDenied", "Anonymous access is not allowed: sign the request.")

    def _check_checksum(self, environ: dict[str, Any]) -> None:
        """S3 computes the SHA-256 of a body sent with `x-amz-checksum-sha256` and refuses
        it (400 BadDigest) when they differ; moto stores it whatever it is."""
        declared = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
        if not declared or environ.get("REQUEST_METHOD", "").upper() != "PUT":
            return
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        actual = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if not hmac.compare_digest(actual, declared.strip()):
            raise Refused(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.")

    def _check_browser(self, environ: dict[str, Any]) -> None:
        host = (environ.get("HTTP_HOST") or "").lower()
        if self.hosts and host not in self.hosts:
            raise Refused(403, "AccessDenied", f"Host {host!r} is not this endpoint.")
        origin = environ.get("HTTP_ORIGIN")
        with self._lock:
            own = origin is not None and origin.lower().rstrip("/") in self.origins
        if origin is not None and not own:
            raise Refused(403, "AccessDenied", f"Requests from {origin!r} are not allowed.")
        fetch_site = (environ.get("HTTP_SEC_FETCH_SITE") or "").lower()
        if fetch_site == "cross-site" and not own:
            raise Refused(403, "AccessDenied", "Cross-site requests are not allowed.")

    def _check_header_credential(self, authorization: str) -> None:
        credential = ""
        for item in authorization.removeprefix(ALGORITHM).split(","):
            name, _, value = item.strip().partition("=")
            if name == "Credential":
                credential = value
        if credential.split("/", 1)[0] != self.access_key_id:
            raise Refused(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )

    def _check_query_signature(
        self, environ: dict[str, Any], method: str, query: list[tuple[str, str]]
    ) -> None:
        params = {name: value for name, value in query}
        required = (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        missing = [name for name in required if name not in params]
        if missing or params["X-Amz-Algorithm"] != ALGORITHM:
            raise Refused(
                400,
                "AuthorizationQueryParametersError",
                f"Query-string authentication version 4 requires {', '.join(missing) or 'X-Amz-Algorithm'}.",
            )
        access_key, _, scope = params["X-Amz-Credential"].partition("/")
        if access_key != self.access_key_id:
            raise Refused(
                403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
            )
        scope_parts = scope.split("/")
        if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
            raise Refused(400, "AuthorizationQueryParametersError", "The credential scope is malformed.")
        try:
            signed_at = (
                datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
            )
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise Refused(
                400, "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed."
            ) from None
        if not 0 < expires <= MAX_EXPIRES_SECONDS:
            raise Refused(
                400,
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be more than 0 and at most 604800 seconds.",
            )
        now = self.clock()
        if now > signed_at + expires:
            raise Refused(403, "AccessDenied", "Request has expired")
        if signed_at > now + MAX_SKEW_SECONDS:
            raise Refused(403, "AccessDenied", "Request is not valid yet")
        signed_headers = params["X-Amz-SignedHeaders"].lower().split(";")
        if "host" not in signed_headers:
            raise Refused(400, "AuthorizationQueryParametersError", "Host must be a signed header.")
        unsigned = sorted(
            name
            for name in _header_names(environ)
            if name.startswith("x-amz-") and name not in signed_headers
        )
        if unsigned:
            raise Refused(
                403,
                "AccessDenied",
                f"There were headers present in the request which were not signed: {', '.join(unsigned)}",
            )
        canonical = "\n".join(
            (
                method,
                _raw_path(environ),
                "&".join(
                    f"{_encode(name)}={_encode(value)}"
                    for name, value in sorted(query)
                    if name != "X-Amz-Signature"
                ),
                "".join(f"{name}:{_header_value(environ, name)}\n" for name in signed_headers),
                ";".join(signed_headers),
                params.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            )
        )
        to_sign = "\n".join(
            (ALGORITHM, params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = ("AWS4" + self.secret_access_key).encode()
        for part in scope_parts:
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["X-Amz-Signature"].lower()):
            raise Refused(403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)

    # ---- the answer

    def _refuse(
        self, refusal: Refused, origin: str | None, start_response: Callable[..., Any]
    ) -> list[bytes]:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{refusal.code}</Code><Message>{_xml(refusal.message)}</Message>"
            f"<RequestId>{hashlib.sha1(str(self.clock()).encode()).hexdigest()[:16].upper()}</RequestId>"
            "</Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        with self._lock:
            own = origin is not None and origin.lower().rstrip("/") in self.origins
        if own:
            # The stack's page reads the refusal (its upload shows why), as S3's CORS allows.
            headers += [("Access-Control-Allow-Origin", str(origin)), ("Vary", "Origin")]
        reason = {400: "Bad Request", 403: "Forbidden"}.get(refusal.status, "Error")
        start_response(f"{refusal.status} {reason}", headers)
        return [body]


def _query_pairs(raw: str) -> list[tuple[str, str]]:
    """The query as sent, each name and value percent-decoded once (no `+` for space:
    SigV4 encodes a space as %20)."""
    pairs = []
    for item in raw.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _raw_path(environ: dict[str, Any]) -> str:
    """The path exactly as the client sent it (S3 signs it without normalising it)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    return quote(environ.get("PATH_INFO", "/"), safe="/~")


def _header_names(environ: dict[str, Any]) -> list[str]:
    names = [key[5:].replace("_", "-").lower() for key in environ if key.startswith("HTTP_")]
    names += [
        name
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length"))
        if environ.get(key)
    ]
    return names


def _header_value(environ: dict[str, Any], name: str) -> str:
    if name in ("content-type", "content-length"):
        value = environ.get(name.upper().replace("-", "_"), "")
    else:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"), "")
    return " ".join(str(value).split())


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
