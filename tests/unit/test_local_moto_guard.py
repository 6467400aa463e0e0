"""The local stack's moto answers as AWS does to what AWS refuses: presigned URLs
whose signature, expiry or signed headers do not hold, credentials that are not the
stack's, unsigned requests, and web pages other than the stack's own."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from agentfiles_local.runtime.aws import Credentials, MotoProcess

CREDENTIALS = Credentials("stack-key", "stack-secret")
OWN_PAGE = "http://127.0.0.1:8000"
BUCKET = "guarded"
BODY = b"\x89PNG checked bytes"


def s3(endpoint: str, credentials: Credentials = CREDENTIALS) -> Any:
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name="us-east-1",
    ).client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto = MotoProcess("127.0.0.1", 0, CREDENTIALS).start()
    moto.allow_origins([OWN_PAGE])
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    s3(url).create_bucket(Bucket=BUCKET)
    yield url
    moto.stop()


def presigned_put(endpoint: str, key: str, expires: int = 300) -> tuple[str, dict[str, str]]:
    """A write-once PUT as the API signs one (agentfiles.data.blobs.presign_put)."""
    checksum = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    url = s3(endpoint).generate_presigned_url(
        "put_object",
        Params={
            "Bucket": BUCKET,
            "Key": key,
            "ContentType": "image/png",
            "ContentLength": len(BODY),
            "IfNoneMatch": "*",
            "ChecksumSHA256": checksum,
        },
        ExpiresIn=expires,
    )
    headers = {"Content-Type": "image/png", "If-None-Match": "*", "x-amz-checksum-sha256": checksum}
    return url, headers


def error_code(response: requests.Response) -> str:
    return response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def stored(endpoint: str, key: str) -> bool:
    listed = s3(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))


# ---- presigned URLs: signature, expiry, signed headers ------------------------------


def test_given_a_presigned_put_sent_as_signed_when_it_arrives_then_the_object_is_stored(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/ok")
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert stored(endpoint, "files/alice/ok")
    # And its presigned GET downloads it
    download = s3(endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "files/alice/ok"}
    )
    assert requests.get(download, timeout=10).content == BODY


def test_given_a_forged_signature_when_the_url_is_used_then_it_is_403_and_nothing_is_stored(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/forged")
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    forged = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    response = requests.put(forged, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 403
    assert error_code(response) == "SignatureDoesNotMatch"
    assert not stored(endpoint, "files/alice/forged")


def test_given_an_expired_url_when_it_is_used_then_it_is_403_and_nothing_is_stored(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/expired", expires=1)
    time.sleep(2.1)  # past X-Amz-Date + X-Amz-Expires
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 403
    assert "Request has expired" in response.text
    assert not stored(endpoint, "files/alice/expired")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Content-Type", "text/html"),
        ("x-amz-checksum-sha256", base64.b64encode(hashlib.sha256(b"other").digest()).decode()),
        ("If-None-Match", "x"),
    ],
)
def test_given_a_signed_header_changed_when_the_url_is_used_then_it_is_403_and_nothing_is_stored(
    endpoint, header, value
):
    # Given: a checked-upload URL, and a client that sends another value for a signed header
    key = f"files/alice/swapped-{header}"
    url, headers = presigned_put(endpoint, key)
    headers[header] = value
    # When
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    # Then: as S3 answers it, and no object
    assert response.status_code == 403
    assert error_code(response) == "SignatureDoesNotMatch"
    assert not stored(endpoint, key)


def test_given_an_amz_header_that_was_not_signed_when_sent_then_it_is_403(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/extra")
    headers["x-amz-meta-note"] = "sneaked in"
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 403
    assert "not signed" in response.text
    assert not stored(endpoint, "files/alice/extra")


def test_given_another_body_length_than_signed_when_sent_then_it_is_403(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/longer")
    response = requests.put(url, data=BODY + b"more", headers=headers, timeout=10)
    assert response.status_code == 403
    assert not stored(endpoint, "files/alice/longer")


def test_given_other_bytes_than_the_signed_checksum_when_sent_then_it_is_bad_digest_and_nothing_is_stored(
    endpoint,
):
    # Given: a URL signed for the checksum of BODY, and other bytes of the same length
    url, headers = presigned_put(endpoint, "files/alice/other-bytes")
    # When
    response = requests.put(url, data=bytes(reversed(BODY)), headers=headers, timeout=10)
    # Then: S3 computes the checksum of what came and refuses it
    assert response.status_code == 400
    assert error_code(response) == "BadDigest"
    assert not stored(endpoint, "files/alice/other-bytes")


# ---- credentials and anonymous requests ----------------------------------------------


def test_given_credentials_that_are_not_the_stacks_when_used_then_aws_refuses_them(endpoint):
    with pytest.raises(ClientError) as raised:
        s3(endpoint, Credentials("junk", "junk")).list_objects_v2(Bucket=BUCKET)
    assert raised.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_given_an_unsigned_request_when_it_arrives_then_it_is_access_denied(endpoint):
    response = requests.get(f"{endpoint}/{BUCKET}?list-type=2", timeout=10)
    assert response.status_code == 403
    assert error_code(response) == "AccessDenied"


# ---- web pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:5173"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "rebound.example"},
    ],
)
def test_given_a_request_from_another_page_when_it_reaches_moto_then_it_is_refused_without_cors(
    endpoint, headers
):
    # Given: a request any page could make, with the stack's real key and signature
    url, signed = presigned_put(endpoint, "files/alice/from-a-page")
    # When: it comes from another origin (or through a rebound name)
    response = requests.put(url, data=BODY, headers={**signed, **headers}, timeout=10)
    # Then: refused, and no CORS header lets that page read anything
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert not stored(endpoint, "files/alice/from-a-page")


def test_given_the_stacks_own_page_when_it_preflights_and_puts_then_both_are_allowed(endpoint):
    url, headers = presigned_put(endpoint, "files/alice/from-the-page")
    preflight = requests.options(
        url,
        headers={
            "Origin": OWN_PAGE,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type,if-none-match,x-amz-checksum-sha256",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in (OWN_PAGE, "*")
    response = requests.put(url, data=BODY, headers={**headers, "Origin": OWN_PAGE}, timeout=10)
    assert response.status_code == 200, response.text
    assert stored(endpoint, "files/alice/from-the-page")


def test_given_a_preflight_from_another_page_when_it_arrives_then_it_is_refused(endpoint):
    response = requests.options(
        f"{endpoint}/{BUCKET}",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
