"""AWS's own sample events (events/aws/, see its README) given to every handler they could
reach: each answers a typed 4xx, or skips or reports the record; none crashes, and
nothing is retried for ever (a reported record returns to its queue, then to its DLQ).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agentfiles_local.events import LambdaContext

SAMPLES = Path(__file__).parents[2] / "events" / "aws"
API_SAMPLES = [
    "apiGatewayProxyV2Event.json",  # JWT authorizer, claims without `sub`
    "apiGatewayProxyV2IamEvent.json",  # IAM authorization
    "apiGatewayProxyV2LambdaAuthorizerEvent.json",  # a Lambda authorizer's context
]
SQS_SAMPLES = [
    "sqsEvent.json",  # plain text and JSON bodies that are not ours
    "snsSqsEvent.json",  # an SNS notification delivered through SQS
    "sqsDlqTriggerEvent.json",  # a record redriven from a dead-letter queue
    "s3SqsEvent.json",  # an S3 notification inside SQS, for another bucket
]
SQS_HANDLERS = ["upload_trigger", "generate", "maintenance"]


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def _handler(name: str) -> Any:
    import importlib

    return importlib.import_module(f"functions.{name}.handler").lambda_handler


def _at(event: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The sample, sent to one of our routes."""
    event = copy.deepcopy(event)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    return event


@pytest.mark.parametrize("sample", API_SAMPLES)
def test_given_an_api_gateway_sample_as_published_when_the_api_runs_then_a_typed_404(aws, sample):
    # Given AWS's sample for a route this API does not have / When the API function runs
    response = _handler("api")(_sample(sample), LambdaContext("api", 29))
    # Then it answers a typed 404
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "route_not_found"


@pytest.mark.parametrize("sample", API_SAMPLES)
def test_given_an_api_gateway_sample_without_a_subject_when_it_reaches_a_route_then_401(aws, sample):
    # Given the sample's authorizer context (no JWT `sub`: IAM, a Lambda authorizer, or
    # JWT claims of another issuer), sent to a private route
    event = _at(_sample(sample), "GET", "/threads")
    # When the API function runs
    response = _handler("api")(event, LambdaContext("api", 29))
    # Then it refuses it as the JWT authorizer would, and reads nothing
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {"message": "Unauthorized"}


@pytest.mark.parametrize("sample", SQS_SAMPLES)
@pytest.mark.parametrize("function", SQS_HANDLERS)
def test_given_an_sqs_sample_that_is_not_ours_when_a_consumer_runs_then_each_record_is_skipped_or_reported(
    aws, function, sample
):
    # Given a batch of records no part of this system sent
    event = _sample(sample)
    ids = {record["messageId"] for record in event["Records"]}
    # When the queue's consumer runs
    result = _handler(function)(event, LambdaContext(function, 60))
    # Then it does not crash: every record is done or reported failed, one by one
    failed = {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
    assert failed <= ids


def test_given_a_notification_for_another_bucket_when_the_upload_trigger_runs_then_ours_is_untouched(aws):
    # Given an object in our bucket under the key that AWS's sample names in another bucket
    event = _sample("s3SqsEvent.json")
    notification = json.loads(event["Records"][0]["body"])
    key = notification["Records"][0]["s3"]["object"]["key"]
    assert notification["Records"][0]["s3"]["bucket"]["name"] != aws.resources.bucket_name
    aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=key, Body=b"ours")

    # When the trigger receives the notification
    result = _handler("upload_trigger")(event, LambdaContext("upload_trigger", 60))

    # Then the record is skipped (not retried) and our object is still there
    assert result == {"batchItemFailures": []}
    assert key in aws.object_keys()


def test_given_bodies_that_are_not_jobs_when_generate_runs_then_they_are_parked_in_its_dlq(aws):
    # Given AWS's plain SQS sample (two bodies that are not generation jobs)
    event = _sample("sqsEvent.json")
    # When the generate function runs
    result = _handler("generate")(event, LambdaContext("generate", 300))
    # Then nothing is retried: both wait in the dead-letter queue, with the reason
    assert result == {"batchItemFailures": []}
    parked = aws.sqs.receive_message(QueueUrl=aws.resources.dlq_urls["generations"], MaxNumberOfMessages=10)
    assert sorted(m["Body"] for m in parked["Messages"]) == sorted(r["body"] for r in event["Records"])


def test_given_an_eventbridge_event_other_than_the_schedule_when_the_vacuum_runs_then_it_is_skipped(aws):
    # Given an EC2 state-change event (AWS's EventBridge sample)
    event = _sample("eventBridgeEvent.json")
    # When it reaches the vacuum function
    result = _handler("vacuum")(event, LambdaContext("vacuum", 300))
    # Then nothing runs and the event is reported skipped
    assert result == {"skipped": "aws.ec2: EC2 Instance State-change Notification"}


@pytest.mark.parametrize("sample", ["sqsEvent.json", "apiGatewayProxyV2Event.json"])
def test_given_an_event_that_is_not_eventbridge_when_the_vacuum_runs_then_it_is_skipped(aws, sample):
    # Given an event of another service / When it reaches the vacuum function
    result = _handler("vacuum")(_sample(sample), LambdaContext("vacuum", 300))
    # Then it is skipped, not a crash
    assert result == {"skipped": "not an EventBridge event"}


def test_given_the_schedule_event_when_the_vacuum_runs_then_it_runs(aws):
    # Given the scheduled event the rule sends (events/eventbridge_schedule.json)
    event = json.loads((SAMPLES.parent / "eventbridge_schedule.json").read_text())
    # When the vacuum function runs / Then it reports a vacuum, a sweep and a retention run
    result = _handler("vacuum")(event, LambdaContext("vacuum", 300))
    assert set(result) == {"vacuum", "sweep", "retention"}
