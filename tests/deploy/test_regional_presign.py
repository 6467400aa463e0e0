"""Presigned URLs name the bucket's regional virtual host, as S3 answers it from the
first minute in every region; the local stack's own endpoint is left as configured."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from moto import mock_aws

from agentfiles.data import blobs, clients
from agentfiles.settings import DEPLOYMENT_VARIABLES, get_settings

BUCKET = "agentfiles-files-eu"


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A function's environment in eu-west-1, with no endpoint override (as on Lambda)."""
    for name in DEPLOYMENT_VARIABLES:
        monkeypatch.setenv(name, f"placeholder-{name.lower()}")
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    for name, value in {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    _forget_clients()
    yield "eu-west-1"
    _forget_clients()


def _forget_clients() -> None:
    # The session keeps the region it was made in.
    clients.reset()
    clients.session.cache_clear()
    get_settings.cache_clear()


def test_given_eu_west_1_and_no_endpoint_override_when_presigning_then_urls_name_the_regional_virtual_host(
    region: str,
) -> None:
    with mock_aws():
        # Given a bucket in eu-west-1 holding an object, written through the functions' client
        clients.s3().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
        clients.s3().put_object(Bucket=BUCKET, Key="files/alice/f1", Body=b"hello")

        # When an upload and a download are presigned
        put_url, _ = blobs.presign_put("files/alice/f2", "text/plain", 5, None, 300)
        get_url = blobs.presign_get("files/alice/f1", 300)

        # Then both name the bucket's regional virtual host, never the global one
        for url in (put_url, get_url):
            parts = urlsplit(url)
            assert parts.scheme == "https"
            assert parts.netloc == f"{BUCKET}.s3.{region}.amazonaws.com", url
            assert not parts.path.startswith(f"/{BUCKET}/")
        # And the signature's scope is the region's
        assert f"%2F{region}%2Fs3%2Faws4_request" in get_url
        # And the client still talks to moto there: the object written is read back
        assert clients.s3().get_object(Bucket=BUCKET, Key="files/alice/f1")["Body"].read() == b"hello"
        assert clients.s3().meta.endpoint_url == f"https://s3.{region}.amazonaws.com"


def test_given_an_endpoint_override_when_presigning_then_the_local_endpoint_is_kept(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack's endpoint (moto behind the gateway)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    _forget_clients()

    # When a download is presigned / Then it names that endpoint, path-style as before
    url = urlsplit(blobs.presign_get("files/alice/f1", 300))
    assert (url.scheme, url.netloc) == ("http", "127.0.0.1:4566")
    assert url.path == f"/{BUCKET}/files/alice/f1"


def test_given_a_china_region_when_asked_for_the_regional_endpoint_then_it_is_under_its_own_suffix() -> None:
    assert clients.s3_regional_endpoint("cn-north-1") == "https://s3.cn-north-1.amazonaws.com.cn"
    assert clients.s3_regional_endpoint("me-central-1") == "https://s3.me-central-1.amazonaws.com"
    assert clients.s3_regional_endpoint(None) is None
