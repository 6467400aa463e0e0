"""The table and the files bucket (plus the bucket that keeps their access logs)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentfiles import topology
from infra.compliance import skip_checkov
from infra.config import DeploymentConfig
from infra.constants import UPLOAD_ALLOWED_HEADERS

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
ACCESS_LOG_DAYS = 90
CORS_MAX_AGE_SECONDS = 3600


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        # Production keeps its data when the stack goes; a dev stack cleans up after itself.
        removal = RemovalPolicy.RETAIN if config.production else RemovalPolicy.DESTROY
        self.table = self._table(config, removal)
        self.access_logs = self._access_logs_bucket(config, removal)
        self.bucket = self._files_bucket(config, removal)

    def _table(self, config: DeploymentConfig, removal: RemovalPolicy) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=topology.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=topology.SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=topology.TTL_ATTRIBUTE,
            deletion_protection=config.production,
            removal_policy=removal,
            # Sparse indexes that hold only keys: readers fetch the few items they need,
            # so the index stays small and cheap to write.
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name,
                    partition_key=dynamodb.Attribute(
                        name=index.partition_key, type=dynamodb.AttributeType.STRING
                    ),
                    sort_key=dynamodb.Attribute(
                        name=index.sort_key, type=_ATTRIBUTE_TYPES[index.sort_key_type]
                    ),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                )
                for index in topology.INDEXES
            ],
        )

    def _access_logs_bucket(self, config: DeploymentConfig, removal: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # CloudFront's standard logs are delivered through an ACL grant, which
            # needs writer-owned objects; S3 server access logs use the bucket policy.
            object_ownership=(
                s3.ObjectOwnership.OBJECT_WRITER
                if config.public_urls
                else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED
            ),
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(ACCESS_LOG_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=not config.production,
        )
        skip_checkov(
            bucket,
            "CKV_AWS_18",
            "This bucket receives the access logs of the others; logging its own access into itself "
            "would log every log delivery.",
            resource_type="AWS::S3::Bucket",
        )
        skip_checkov(
            bucket,
            "CKV_AWS_21",
            "Access logs are written once by S3 and CloudFront and expire after 90 days; versions would "
            "keep expired logs.",
            resource_type="AWS::S3::Bucket",
        )
        return bucket

    def _files_bucket(self, config: DeploymentConfig, removal: RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "Files",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Objects are written once under server-made keys and deleted by the vacuum;
            # old versions would only keep deleted files alive.
            versioned=False,
            cors=[
                s3.CorsRule(
                    # Browsers PUT straight to presigned URLs and GET files back.
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(config.cors_origins),
                    allowed_headers=list(UPLOAD_ALLOWED_HEADERS),
                    exposed_headers=["ETag"],
                    max_age=CORS_MAX_AGE_SECONDS,
                )
            ],
            lifecycle_rules=[
                # A client that gives up halfway through a multipart upload leaves
                # invisible, billed parts behind.
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
                # An export's ZIP is served for a while, then deleted.
                s3.LifecycleRule(
                    prefix=topology.EXPORTS_PREFIX, expiration=Duration.days(topology.EXPORT_RETENTION_DAYS)
                ),
            ],
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="files/",
            removal_policy=removal,
            auto_delete_objects=not config.production,
        )
        skip_checkov(
            bucket,
            "CKV_AWS_21",
            "Objects are written once under server-made keys; a deleted or vacuumed file must be gone, "
            "and old versions would keep it (and its cost) alive.",
            resource_type="AWS::S3::Bucket",
        )
        return bucket

    def notify_object_created(self, queue: sqs.IQueue) -> None:
        """Every new original (under `files/`) goes to `queue`, where the upload trigger
        checks it; what the system derives or exports announces nothing."""
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3_notifications.SqsDestination(queue),
            s3.NotificationKeyFilter(prefix=topology.ORIGINALS_PREFIX),
        )
