"""Optional public URL mode: a CloudFront distribution in front of the files bucket.

The model then fetches images from stable URLs (`PUBLIC_BASE_URL` + key) instead of
presigned ones. The bucket stays private: only this distribution may read it, through
origin access control, and only objects tagged as checked (`topology.CHECKED_TAG`, set
when the bytes passed their check), so pending and rejected uploads are never served.
Responses are cached for at most `CACHE_SECONDS`, which bounds how long a deleted or
vacuumed file stays readable. Anyone holding a checked file's URL can read that file,
which is the trade-off this mode makes.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from agentfiles.topology import CHECKED_TAG
from infra.compliance import acknowledge, skip_checkov

# A delete or a vacuum takes effect at the edge within this time.
CACHE_SECONDS = 300


class PublicUrls(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, log_bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="agentfiles files, read-only",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                # Objects never change under a key, but they are deleted: a short cache
                # bounds how long a deleted file is still served.
                cache_policy=cloudfront.CachePolicy(
                    self,
                    "ShortCache",
                    comment="agentfiles files: deletions reach the edge within minutes",
                    min_ttl=Duration.seconds(0),
                    default_ttl=Duration.seconds(CACHE_SECONDS),
                    max_ttl=Duration.seconds(CACHE_SECONDS),
                    enable_accept_encoding_gzip=True,
                    enable_accept_encoding_brotli=True,
                ),
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/",
        )
        # Origin access control lets the distribution read any object; this takes back
        # the ones not (or not yet) checked. A Deny holds whatever the Allow says.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsOnlyCheckedObjects",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("*")],
                conditions={"StringNotEquals": {f"s3:ExistingObjectTag/{CHECKED_TAG[0]}": CHECKED_TAG[1]}},
            )
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Files are served to the model provider and the users' clients wherever they are.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "Read-only static objects under unguessable keys; a web ACL is left to the operator.",
        )
        skip_checkov(
            self.distribution,
            "CKV_AWS_68",
            "Read-only static objects under unguessable keys; a web ACL is left to the operator.",
        )
        skip_checkov(
            self.distribution,
            "CKV_AWS_174",
            "The default cloudfront.net certificate's TLS policy is fixed by CloudFront; a custom "
            "domain with its own certificate can require TLS 1.2.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The distribution uses the default cloudfront.net certificate, whose TLS policy "
            "CloudFront fixes; a custom domain with its own certificate can raise it.",
        )

    @property
    def base_url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"
