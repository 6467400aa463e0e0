"""The table and the files bucket."""

from __future__ import annotations

from aws_cdk.assertions import Match

from agentfiles import topology
from tests.infra.synthesis import Synthesized


def test_given_any_context_when_synthesized_then_the_table_is_on_demand_with_pitr_and_ttl(
    any_stack: Synthesized,
) -> None:
    # Given the stack / When it is synthesized
    table = any_stack.resource(any_stack.stack.storage.table)

    # Then the table has the shared key schema, on-demand billing, PITR and TTL
    props = table["Properties"]
    assert table["Type"] == "AWS::DynamoDB::GlobalTable"
    assert props["KeySchema"] == [
        {"AttributeName": topology.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": topology.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": topology.TTL_ATTRIBUTE, "Enabled": True}
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_given_the_topology_indexes_when_synthesized_then_each_is_a_keys_only_gsi(
    any_stack: Synthesized,
) -> None:
    # Given the indexes the code queries
    expected = {index.name: index for index in topology.INDEXES}

    # When the table is synthesized
    props = any_stack.resource(any_stack.stack.storage.table)["Properties"]
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}

    # Then each index has the same keys, types and projection as the local stack's
    assert set(indexes) == set(expected)
    for name, spec in expected.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
        assert attribute_types[spec.partition_key] == "S"
        assert attribute_types[spec.sort_key] == spec.sort_key_type


def test_given_stage_prod_when_synthesized_then_the_table_is_protected_and_retained(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given a dev and a prod stack / When synthesized
    dev_table = dev.resource(dev.stack.storage.table)
    prod_table = prod.resource(prod.stack.storage.table)

    # Then only production has deletion protection and keeps the table on stack deletion
    assert prod_table["Properties"]["Replicas"][0]["DeletionProtectionEnabled"] is True
    assert prod_table["DeletionPolicy"] == "Retain"
    assert prod_table["UpdateReplacePolicy"] == "Retain"
    assert dev_table["Properties"]["Replicas"][0].get("DeletionProtectionEnabled") in (None, False)
    assert dev_table["DeletionPolicy"] == "Delete"


def test_given_any_context_when_synthesized_then_the_files_bucket_is_private_and_encrypted(
    any_stack: Synthesized,
) -> None:
    # Given the stack / When synthesized
    props = any_stack.resource(any_stack.stack.storage.bucket)["Properties"]

    # Then public access is blocked, objects are encrypted with S3 keys and not versioned
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert props.get("VersioningConfiguration", {}).get("Status") in (None, "Suspended")
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": any_stack.logical_id(any_stack.stack.storage.access_logs)
    }


def test_given_any_context_when_synthesized_then_the_bucket_policy_refuses_plain_http(
    any_stack: Synthesized,
) -> None:
    # Given the files bucket / When synthesized
    bucket_id = any_stack.logical_id(any_stack.stack.storage.bucket)

    # Then its policy denies every request without TLS
    any_stack.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_given_cors_origins_when_synthesized_then_browsers_may_put_and_get_with_the_signed_headers(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given the default origins (dev) and one configured origin (prod)
    for synthesized, origins in ((dev, ["*"]), (prod, ["https://app.example.com"])):
        # When synthesized
        props = synthesized.resource(synthesized.stack.storage.bucket)["Properties"]

        # Then CORS allows PUT/GET/HEAD with the headers a presigned PUT signs, and exposes ETag
        (rule,) = props["CorsConfiguration"]["CorsRules"]
        assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD", "PUT"]
        assert rule["AllowedOrigins"] == origins
        assert {"content-type", "if-none-match", "x-amz-checksum-sha256"} <= set(rule["AllowedHeaders"])
        assert rule["ExposedHeaders"] == ["ETag"]


def test_given_any_context_when_synthesized_then_incomplete_multipart_uploads_are_aborted_after_a_day(
    any_stack: Synthesized,
) -> None:
    # Given the files bucket / When synthesized
    props = any_stack.resource(any_stack.stack.storage.bucket)["Properties"]

    # Then a lifecycle rule aborts abandoned multipart uploads
    rules = props["LifecycleConfiguration"]["Rules"]
    assert {"DaysAfterInitiation": 1} in [rule.get("AbortIncompleteMultipartUpload") for rule in rules]
    assert all(rule["Status"] == "Enabled" for rule in rules)


def test_given_any_context_when_an_object_is_created_then_s3_notifies_the_uploads_queue(
    any_stack: Synthesized,
) -> None:
    # Given the files bucket and the uploads queue
    bucket_id = any_stack.logical_id(any_stack.stack.storage.bucket)
    uploads_id = any_stack.logical_id(any_stack.stack.queues["uploads"].queue)

    # When synthesized / Then the bucket sends ObjectCreated events of originals (`files/`)
    # to the uploads queue, and only there: derived objects and exports announce nothing
    (notifications,) = any_stack.of_type("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == {"Ref": bucket_id}
    assert notifications["Properties"]["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "QueueArn": {"Fn::GetAtt": [uploads_id, "Arn"]},
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "files/"}]}},
            }
        ]
    }
    # And the queue lets this bucket, and nothing else, send to it
    any_stack.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": uploads_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Condition": {
                                    "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket_id, "Arn"]}}
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_given_stage_prod_when_synthesized_then_buckets_are_retained_and_not_emptied(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given both stages / When synthesized
    prod_bucket = prod.resource(prod.stack.storage.bucket)
    dev_bucket = dev.resource(dev.stack.storage.bucket)

    # Then production keeps its files; a dev stack empties and deletes its buckets
    assert prod_bucket["DeletionPolicy"] == "Retain"
    assert not prod.of_type("Custom::S3AutoDeleteObjects")
    assert dev_bucket["DeletionPolicy"] == "Delete"
    assert len(dev.of_type("Custom::S3AutoDeleteObjects")) == 2
