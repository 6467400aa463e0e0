"""Optional public URL mode: a CloudFront distribution in front of the files bucket.

The model then fetches images from stable URLs (`PUBLIC_BASE_URL` + key) instead of
presigned ones. The bucket stays private: only this distribution may read it, through
origin access control. Anyone holding a file's URL can read that file, which is the
trade-off this mode makes.
"""

from __future__ import annotations

from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import acknowledge


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
                # Objects never change under a key, so they may be cached for long.
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/",
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
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The distribution uses the default cloudfront.net certificate, whose TLS policy "
            "CloudFront fixes; a custom domain with its own certificate can raise it.",
        )

    @property
    def base_url(self) -> str:
        return f"https://{self.distribution.distribution_domain_name}"
