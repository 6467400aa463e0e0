"""Create the system's AWS resources in moto, shaped as the CDK stack declares them
(both read `agentfiles.topology`): table and indexes, bucket with CORS and its
ObjectCreated notification to the uploads queue, every queue with its DLQ."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from agentfiles import topology

REGION = "us-east-1"


@dataclass
class Resources:
    table_name: str
    bucket_name: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)

    def function_environment(self) -> dict[str, str]:
        """What every function finds in its environment, as in the CDK stack."""
        return {
            "TABLE_NAME": self.table_name,
            "BUCKET_NAME": self.bucket_name,
            "GENERATIONS_QUEUE_URL": self.queue_urls["generations"],
            "GENERATIONS_DLQ_URL": self.dlq_urls["generations"],
            "MAINTENANCE_QUEUE_URL": self.queue_urls["maintenance"],
        }


def create_table(client: Any, table_name: str) -> None:
    attributes = {topology.PARTITION_KEY: "S", topology.SORT_KEY: "S"}
    indexes = []
    for index in topology.INDEXES:
        attributes[index.partition_key] = "S"
        attributes[index.sort_key] = index.sort_key_type
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        )
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": topology.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": topology.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
        GlobalSecondaryIndexes=indexes,
    )
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": topology.TTL_ATTRIBUTE},
    )


def provision(
    session: boto3.session.Session | None = None,
    *,
    table_name: str = "agentfiles",
    bucket_name: str = "agentfiles-files",
    visibility_timeout_seconds: int | None = None,
    cors_origins: tuple[str, ...] = ("*",),
    endpoint_url: str | None = None,
) -> Resources:
    session = session or boto3.session.Session(region_name=REGION)
    kwargs: dict[str, Any] = {"region_name": REGION}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    dynamodb = session.client("dynamodb", **kwargs)
    s3 = session.client("s3", **kwargs)
    sqs = session.client("sqs", **kwargs)

    create_table(dynamodb, table_name)
    resources = Resources(table_name=table_name, bucket_name=bucket_name)

    for spec in topology.QUEUES.values():
        dlq_url = sqs.create_queue(QueueName=spec.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"})[
            "QueueUrl"
        ]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        visibility = (
            spec.visibility_timeout_seconds
            if visibility_timeout_seconds is None
            else visibility_timeout_seconds
        )
        url = sqs.create_queue(
            QueueName=spec.name,
            Attributes={
                "VisibilityTimeout": str(visibility),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receives}
                ),
            },
        )["QueueUrl"]
        resources.queue_urls[spec.name] = url
        resources.dlq_urls[spec.name] = dlq_url
        resources.queue_arns[spec.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    s3.create_bucket(Bucket=bucket_name)
    s3.put_bucket_cors(
        Bucket=bucket_name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["PUT", "GET", "HEAD"],
                    "AllowedOrigins": list(cors_origins),
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket_name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": resources.queue_arns["uploads"],
                    "Events": ["s3:ObjectCreated:*"],
                    # As the CDK stack: only originals are announced to the upload check.
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": topology.ORIGINALS_PREFIX}]}
                    },
                }
            ]
        },
    )
    return resources
