"""The vacuum schedule, public URL mode, alarms and stack outputs."""

from __future__ import annotations

from typing import Any

from agentfiles import topology
from tests.infra.synthesis import Synthesized


def _alarms(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [alarm["Properties"] for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values()]


def _alarm_on(synthesized: Synthesized, metric: str, dimension: str, value: Any) -> dict[str, Any]:
    matches = [
        alarm
        for alarm in _alarms(synthesized)
        if alarm["MetricName"] == metric
        and {"Name": dimension, "Value": value} in alarm.get("Dimensions", [])
    ]
    assert len(matches) == 1, (metric, value)
    return matches[0]


def test_given_defaults_when_synthesized_then_the_vacuum_runs_on_the_topology_schedule(
    dev: Synthesized,
) -> None:
    # Given the default schedule (topology.VACUUM_SCHEDULE_MINUTES) / When synthesized
    (rule,) = dev.of_type("AWS::Events::Rule").values()
    vacuum = dev.logical_id(dev.stack.functions["vacuum"])
    dlq = dev.logical_id(dev.stack.schedule.dlq)

    # Then an EventBridge rule invokes the vacuum at that rate
    assert topology.VACUUM_SCHEDULE_MINUTES == 60
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [vacuum, "Arn"]}
    # And a run it cannot deliver is retried, then kept in the schedule's own DLQ
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    # And EventBridge (for this rule only) may invoke the function
    dev.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [vacuum, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [next(iter(dev.of_type("AWS::Events::Rule"))), "Arn"]},
        },
    )


def test_given_a_schedule_override_when_synthesized_then_the_rule_uses_it(prod: Synthesized) -> None:
    # Given vacuumScheduleMinutes=15 / When synthesized
    # (the stack's one schedule; prod also has the malware scan-result rule)
    (rule,) = [
        r for r in prod.of_type("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]
    ]

    # Then the vacuum runs every 15 minutes
    assert rule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"


def test_given_defaults_when_synthesized_then_there_is_no_cloudfront(dev: Synthesized) -> None:
    # Given publicUrls unset / When synthesized / Then files are reached only through presigned URLs
    assert not dev.of_type("AWS::CloudFront::Distribution")
    assert dev.stack.public_urls is None


def test_given_public_urls_when_synthesized_then_cloudfront_reads_the_private_bucket_through_oac(
    prod: Synthesized,
) -> None:
    # Given publicUrls=true / When synthesized
    (distribution_id, distribution) = next(iter(prod.of_type("AWS::CloudFront::Distribution").items()))
    config = distribution["Properties"]["DistributionConfig"]
    (oac_id,) = prod.of_type("AWS::CloudFront::OriginAccessControl")
    bucket_id = prod.logical_id(prod.stack.storage.bucket)

    # Then the distribution's only origin is the files bucket, signed with origin access control
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    assert config["Logging"]["Bucket"] == {
        "Fn::GetAtt": [prod.logical_id(prod.stack.storage.access_logs), "RegionalDomainName"]
    }
    # And the bucket lets this distribution, and no one else, read objects
    (policy,) = [
        p["Properties"]
        for p in prod.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    readers = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "s3:GetObject" in s["Action"]
    ]
    (reader,) = readers
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert distribution_id in str(reader["Condition"]["StringEquals"]["AWS:SourceArn"])
    # And the bucket still blocks every form of public access
    bucket = prod.resource(prod.stack.storage.bucket)["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_given_the_dead_letter_queues_when_synthesized_then_each_alarms_on_any_visible_message(
    any_stack: Synthesized,
) -> None:
    # Given every DLQ: one per work queue and the schedule's
    stack = any_stack.stack
    dlqs = [work.dlq for work in stack.queues.by_name.values()] + [stack.schedule.dlq]
    topic = any_stack.logical_id(stack.monitoring.topic)

    for dlq in dlqs:
        # When synthesized
        queue_name = {"Fn::GetAtt": [any_stack.logical_id(dlq), "QueueName"]}
        alarm = _alarm_on(any_stack, "ApproximateNumberOfMessagesVisible", "QueueName", queue_name)
        # Then one message is enough, and the alarm tells the topic
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == 0
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_given_the_functions_when_synthesized_then_each_alarms_on_errors_and_throttles(
    any_stack: Synthesized,
) -> None:
    # Given every function
    topic = any_stack.logical_id(any_stack.stack.monitoring.topic)
    for name, function in any_stack.stack.functions.by_name.items():
        for metric in ("Errors", "Throttles"):
            # When synthesized
            alarm = _alarm_on(any_stack, metric, "FunctionName", {"Ref": any_stack.logical_id(function)})

            # Then any error or throttle in five minutes raises the alarm
            assert alarm["Namespace"] == "AWS/Lambda", name
            assert alarm["Statistic"] == "Sum"
            assert alarm["Period"] == 300
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
            assert alarm["Threshold"] == 0
            assert alarm["TreatMissingData"] == "notBreaching"
            assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_given_the_api_when_synthesized_then_server_errors_raise_an_alarm(any_stack: Synthesized) -> None:
    # Given the HTTP API / When synthesized
    (api_id,) = any_stack.of_http_api("AWS::ApiGatewayV2::Api")

    # Then a 5xx answer raises the alarm
    alarm = _alarm_on(any_stack, "5xx", "ApiId", {"Ref": api_id})
    assert alarm["Namespace"] == "AWS/ApiGateway"
    assert alarm["Threshold"] == 0
    # And, in all, the stack watches every DLQ (the schedule's and the vacuum's failed runs
    # included), every function twice, the API, and the vacuum's three failure counts; with
    # malware scanning, the scan-result rule's DLQ and threats found as well
    scanning = 2 if any_stack.stack.config.malware_scan else 0
    expected = (len(topology.QUEUES) + 2) + 2 * len(topology.FUNCTIONS) + 1 + 3 + scanning
    assert len(_alarms(any_stack)) == expected


def test_given_the_vacuum_when_synthesized_then_its_failure_counts_raise_alarms(
    any_stack: Synthesized,
) -> None:
    # Given the vacuum's custom metrics / When synthesized
    watched = {
        alarm["MetricName"]
        for alarm in _alarms(any_stack)
        if alarm.get("Namespace") == "agentfiles"
        and alarm.get("Dimensions") == [{"Name": "service", "Value": "agentfiles-vacuum"}]
    }
    # Then each failure count the vacuum emits has an alarm
    assert watched == {"CandidatesFailed", "SweepFailures", "RepliesGivenUp"}


def test_given_an_alarm_email_when_synthesized_then_the_topic_mails_it(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given alarmEmail in prod only / When synthesized
    # Then prod subscribes that address, and dev has a topic without subscribers
    prod.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    assert not dev.of_type("AWS::SNS::Subscription")
    # And the topic refuses plain-HTTP publishers
    (policy,) = dev.of_type("AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_given_the_stack_when_synthesized_then_outputs_tell_clients_where_things_are(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given both stacks / When synthesized
    dev_outputs = dev.data["Outputs"]
    prod_outputs = prod.data["Outputs"]
    (api_id,) = dev.of_http_api("AWS::ApiGatewayV2::Api")

    # Then the API URL, bucket, table and secret are outputs
    for outputs in (dev_outputs, prod_outputs):
        assert {"ApiUrl", "BucketName", "TableName", "OpenAiSecretArn", "AlarmTopicArn"} <= set(outputs)
    url_parts = dev_outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url_parts[:3] == ["https://", {"Ref": api_id}, ".execute-api."]
    assert dev_outputs["BucketName"]["Value"] == {"Ref": dev.logical_id(dev.stack.storage.bucket)}
    assert dev_outputs["TableName"]["Value"] == {"Ref": dev.logical_id(dev.stack.storage.table)}
    # And the API function, whose environment the operator's commands read the limits from
    assert dev_outputs["ApiFunctionName"]["Value"] == {"Ref": dev.logical_id(dev.stack.functions["api"])}
    # And the Cognito ids when the stack made the pool; the CloudFront URL when there is one
    assert dev_outputs["UserPoolId"]["Value"] == {"Ref": dev.logical_id(dev.stack.api.user_pool)}
    assert dev_outputs["UserPoolClientId"]["Value"] == {"Ref": dev.logical_id(dev.stack.api.user_pool_client)}
    assert "PublicBaseUrl" not in dev_outputs
    assert "UserPoolId" not in prod_outputs
    assert "PublicBaseUrl" in prod_outputs
    # And where clients connect for live replies: wss:// on the push API's stage
    ws_parts = dev_outputs["WebSocketUrl"]["Value"]["Fn::Join"][1]
    assert ws_parts[:2] == ["wss://", {"Ref": dev.logical_id(dev.stack.push.api)}]
    assert ws_parts[-1].endswith("/live")


def test_given_the_alarm_topic_when_synthesized_then_it_is_encrypted_with_a_key_cloudwatch_may_use(
    any_stack: Synthesized,
) -> None:
    # Given the alarm topic / When synthesized
    monitoring = any_stack.stack.monitoring
    topic = any_stack.resource(monitoring.topic)["Properties"]
    key_id = any_stack.logical_id(monitoring.key)
    key = any_stack.data["Resources"][key_id]

    # Then it is encrypted with the stack's own key, which rotates
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # And CloudWatch alarms may use the key to publish to it
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # And the key goes with a dev stack, and stays with a production one
    assert key["DeletionPolicy"] == ("Retain" if any_stack.stack.config.production else "Delete")
