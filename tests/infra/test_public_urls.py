"""Public URL mode (CloudFront): only checked objects are served, and not for long."""

from __future__ import annotations

from typing import Any

from agentfiles.topology import CHECKED_TAG
from infra.public_urls import CACHE_SECONDS
from tests.infra.synthesis import Synthesized


def _cloudfront_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    bucket_id = synthesized.logical_id(synthesized.stack.storage.bucket)
    (policy,) = [
        resource["Properties"]["PolicyDocument"]
        for resource in synthesized.of_type("AWS::S3::BucketPolicy").values()
        if resource["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return [
        statement
        for statement in policy["Statement"]
        if statement.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]


def test_given_public_urls_when_synthesized_then_cloudfront_may_read_only_objects_tagged_checked(
    prod: Synthesized,
) -> None:
    # Given the stack with publicUrls=true / When its files bucket policy is read
    statements = _cloudfront_statements(prod)
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [prod.logical_id(prod.stack.storage.bucket), "Arn"]}, "/*"]]}

    # Then the distribution is allowed to read objects through origin access control
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Action"] for s in allows] == ["s3:GetObject"]
    # And denied every object that does not carry the checked tag
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:GetObject"
    assert deny["Resource"] == objects == allows[0]["Resource"]
    assert deny["Condition"] == {
        "StringNotEquals": {f"s3:ExistingObjectTag/{CHECKED_TAG[0]}": CHECKED_TAG[1]}
    }


def test_given_public_urls_when_synthesized_then_the_edge_caches_for_minutes_not_a_day(
    prod: Synthesized,
) -> None:
    # Given the distribution / When its cache policy is read
    (distribution,) = prod.of_type("AWS::CloudFront::Distribution").values()
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    policy_id = behavior["CachePolicyId"]["Ref"]
    config = prod.data["Resources"][policy_id]["Properties"]["CachePolicyConfig"]

    # Then nothing is cached longer than a few minutes, so a delete or a vacuum takes
    # effect at the edge within that time
    assert CACHE_SECONDS <= 300
    assert config["MaxTTL"] == config["DefaultTTL"] == CACHE_SECONDS
    assert config["MinTTL"] == 0


def test_given_no_public_urls_when_synthesized_then_nothing_but_the_functions_reads_the_bucket(
    dev: Synthesized,
) -> None:
    # Given the default stack / Then there is no distribution and no CloudFront grant
    assert dev.of_type("AWS::CloudFront::Distribution") == {}
    assert _cloudfront_statements(dev) == []
