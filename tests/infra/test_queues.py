"""Work queues, their dead-letter queues and the functions that consume them."""

from __future__ import annotations

from typing import Any

import pytest

from agentfiles import topology
from tests.infra.synthesis import Synthesized


def _mapping_for(synthesized: Synthesized, queue_id: str) -> dict[str, Any]:
    (mapping,) = [
        resource["Properties"]
        for resource in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    return mapping


@pytest.mark.parametrize("name", list(topology.QUEUES))
def test_given_a_work_queue_when_synthesized_then_it_has_a_dlq_with_the_specified_receive_count(
    any_stack: Synthesized, name: str
) -> None:
    # Given a queue of the topology
    spec = topology.QUEUES[name]
    work = any_stack.stack.queues[name]

    # When synthesized
    queue = any_stack.resource(work.queue)["Properties"]
    dlq = any_stack.resource(work.dlq)["Properties"]

    # Then a failing message moves to its own DLQ after max_receives attempts
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [any_stack.logical_id(work.dlq), "Arn"]},
        "maxReceiveCount": spec.max_receives,
    }
    assert spec.max_receives == 5
    # And the DLQ keeps messages for the maximum 14 days
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("name", list(topology.QUEUES))
def test_given_a_work_queue_when_synthesized_then_visibility_is_at_least_six_times_its_consumer_timeout(
    any_stack: Synthesized, name: str
) -> None:
    # Given a queue and the function its event source mapping invokes
    work = any_stack.stack.queues[name]
    queue_id = any_stack.logical_id(work.queue)
    mapping = _mapping_for(any_stack, queue_id)
    functions = any_stack.stack.functions
    consumer = any_stack.resource(functions[work.spec.consumer])

    # When synthesized / Then the queue hides a message for at least 6x the consumer's timeout
    visibility = any_stack.data["Resources"][queue_id]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * consumer["Properties"]["Timeout"]
    assert visibility == work.spec.visibility_timeout_seconds
    # And the consumer is the one the topology names (its live alias when it runs from snapshots)
    assert any_stack.invokes(mapping["FunctionName"], work.spec.consumer)


@pytest.mark.parametrize("name", list(topology.QUEUES))
def test_given_a_work_queue_when_synthesized_then_its_consumer_reports_partial_batch_failures(
    any_stack: Synthesized, name: str
) -> None:
    # Given a queue spec
    spec = topology.QUEUES[name]

    # When synthesized
    mapping = _mapping_for(any_stack, any_stack.logical_id(any_stack.stack.queues[name].queue))

    # Then failed records are reported one by one, with the batch size and window of the spec
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == spec.batch_size
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == spec.batching_window_seconds


def test_given_any_context_when_synthesized_then_every_queue_is_encrypted_and_refuses_plain_http(
    any_stack: Synthesized,
) -> None:
    # Given every SQS queue of the stack (work queues, their DLQs, the schedule's DLQ, the
    # vacuum's on-failure destination, and with malware scanning the scan-result rule's DLQ)
    queues = any_stack.of_type("AWS::SQS::Queue")
    assert len(queues) == 2 * len(topology.QUEUES) + 2 + (1 if any_stack.stack.config.malware_scan else 0)

    for queue_id, queue in queues.items():
        # Then each uses SQS-managed encryption
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, queue_id
        # And its policy denies requests without TLS
        (policy,) = [
            p
            for p in any_stack.of_type("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in p["Properties"]["Queues"]
        ]
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        } in policy["Properties"]["PolicyDocument"]["Statement"]


def test_given_the_topology_when_synthesized_then_exactly_one_mapping_per_queue_exists(
    any_stack: Synthesized,
) -> None:
    # Given the topology's queues / When synthesized
    mappings = any_stack.of_type("AWS::Lambda::EventSourceMapping")

    # Then nothing else consumes a queue (the DLQs are read by people, not functions)
    assert len(mappings) == len(topology.QUEUES)


def test_given_the_generate_queue_when_synthesized_then_its_consumer_runs_at_most_the_configured_concurrency(
    any_stack: Synthesized,
) -> None:
    # Given the queue whose consumer calls the model (and so spends money)
    queues = any_stack.stack.queues
    generations = _mapping_for(any_stack, any_stack.logical_id(queues["generations"].queue))

    # Then its event source runs at most generateMaxConcurrency invocations at once
    # (10 by default; the prod context asks for 3)
    expected = any_stack.stack.config.generate_max_concurrency
    assert generations["ScalingConfig"] == {"MaximumConcurrency": expected}
    assert expected == (3 if any_stack.stack.config.production else 10)
    # And the functions themselves reserve nothing from the account's pool
    for function in any_stack.of_type("AWS::Lambda::Function").values():
        assert "ReservedConcurrentExecutions" not in function["Properties"]
    # And the other consumers are not bounded by it
    for name in ("uploads", "maintenance"):
        assert "ScalingConfig" not in _mapping_for(any_stack, any_stack.logical_id(queues[name].queue))
